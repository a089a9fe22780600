from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mutoscope.errors import invalid_from_validation

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

# A unix time a request may set: up to 9999-12-31T23:59:59Z. Beyond that the database's integer columns
# overflow and an HTTP date (the Sunset header every answer carries) cannot be written.
UnixTime = Annotated[int, Field(ge=0, le=253_402_300_799)]


@dataclass
class Upload:
    """One file of a multipart request."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class Body:
    """A request body as the services see it: JSON or multipart fields, and any uploaded files."""

    fields: dict[str, Any]
    files: dict[str, Upload] = field(default_factory=dict)


def parse(model_cls: type[M], fields: dict[str, Any]) -> M:
    """Validate body fields into a request model; a failure is a 400 naming the param."""
    try:
        return model_cls.model_validate(fields)
    except ValidationError as e:
        raise invalid_from_validation(e.errors()) from None


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
