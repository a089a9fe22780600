from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, model_validator

logger = logging.getLogger(__name__)


class OpenAIBaseModel(BaseModel):
    """Accepts unknown fields (new SDK versions send them) but logs what it ignores."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _log_extra(self):
        if self.model_extra:
            logger.info("ignoring unknown request fields: %s", sorted(self.model_extra))
        return self


class ErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorInfo
