"""/v1/models: the models this server offers (OpenAI's Model object plus capabilities)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from mutoscope.api.deps import PrincipalDep
from mutoscope.errors import NotFound
from mutoscope.lifecycle import service as lifecycle
from mutoscope.protocol.models import ModelCameraMove, ModelList, ModelObject
from mutoscope.services import services

router = APIRouter(prefix="/v1/models", tags=["models"])


def _to_object(info, public_name: str, created: int, schedules: dict) -> ModelObject:
    row = schedules.get(public_name) or schedules.get(info.name)
    return ModelObject(status=lifecycle.model_status(row), shutdown_date=row.shutdown_at if row else None,
                       replacement=row.replacement if row else None,id=public_name, created=created, owned_by="mutoscope", family=info.family,
                       alias_of=info.name if public_name != info.name else None, has_audio=info.has_audio,
                       sizes=list(info.sizes), seconds=list(info.seconds), fps=info.fps, license=info.license,
                       installed=info.installed, test_model=info.test_model,
                       edit_strength=getattr(info, "edit_strength", None),
                       camera=[ModelCameraMove(move=move, applied=m.applied,
                                               installed=(getattr(info, "camera_installed", None) or {}).get(move) if m.applied == "adapter"
                                               else True)
                               for move, m in (getattr(info, "camera", None) or {}).items()])


@router.get("", response_model=ModelList)
def list_models(request: Request, who: PrincipalDep) -> ModelList:
    created = services(request).started_at
    with services(request).sessions() as s:
        schedules = lifecycle.model_schedules(s)
    data = []
    for info in services(request).catalog.list_models():
        data.append(_to_object(info, info.name, created, schedules))
        data.extend(_to_object(info, alias, created, schedules) for alias in info.aliases)
    return ModelList(data=data)


@router.get("/{model_id}", response_model=ModelObject)
def retrieve_model(model_id: str, request: Request, who: PrincipalDep) -> ModelObject:
    try:
        info = services(request).catalog.resolve(model_id)
    except LookupError:
        raise NotFound(f"The model '{model_id}' does not exist.", param="model", code="model_not_found") from None
    with services(request).sessions() as s:
        schedules = lifecycle.model_schedules(s)
    return _to_object(info, model_id, services(request).started_at, schedules)
