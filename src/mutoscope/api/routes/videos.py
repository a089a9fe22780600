"""/v1/videos: thin handlers that call the video commands or queries once and shape the HTTP response."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from mutoscope.http.body import read_body
from mutoscope.api.deps import PrincipalDep
from mutoscope.api.idempotency import IdempotentRoute
from mutoscope.services import services
from mutoscope.videos.commands import VideoCommands
from mutoscope.videos.queries import VideoQueries
from mutoscope.protocol.videos import (CharacterList, CharacterObject, DeletedCharacter, DeletedVideo, VideoList,
                                       VideoObject)
from mutoscope.http.files import stored_response

# Every POST here creates or charges (or is harmless to repeat): all honour Idempotency-Key.
router = APIRouter(prefix="/v1/videos", tags=["videos"], route_class=IdempotentRoute)


def _commands(request: Request) -> VideoCommands:
    return services(request).videos


def _queries(request: Request) -> VideoQueries:
    return services(request).video_queries


def _poll_header(response: Response, request: Request, video: VideoObject) -> VideoObject:
    if video.status in ("queued", "in_progress"):
        response.headers["openai-poll-after-ms"] = str(_queries(request).poll_after_ms(video.id))
    return video


@router.post("", response_model=VideoObject)
async def create_video(request: Request, response: Response, who: PrincipalDep) -> VideoObject:
    body = await read_body(request, services(request).settings.max_upload_bytes)
    video, headers = await run_in_threadpool(_commands(request).create, who, body)
    response.headers.update(headers)
    return _poll_header(response, request, video)


@router.get("", response_model=VideoList)
def list_videos(request: Request, who: PrincipalDep, after: str | None = None,
                limit: int = Query(20, ge=0, le=100), order: Literal["asc", "desc"] = "desc") -> VideoList:
    return _queries(request).list(who, after, limit, order)


@router.post("/extensions", response_model=VideoObject)
async def extend_video(request: Request, response: Response, who: PrincipalDep) -> VideoObject:
    body = await read_body(request, services(request).settings.max_upload_bytes)
    video, headers = await run_in_threadpool(_commands(request).extend, who, body)
    response.headers.update(headers)
    return _poll_header(response, request, video)


@router.post("/edits", response_model=VideoObject)
async def edit_video(request: Request, response: Response, who: PrincipalDep) -> VideoObject:
    body = await read_body(request, services(request).settings.max_upload_bytes)
    video, headers = await run_in_threadpool(_commands(request).edit, who, body)
    response.headers.update(headers)
    return _poll_header(response, request, video)


# Characters are served by the cameo API: a character with a face is bound to a cameo's consent.
@router.post("/characters", response_model=CharacterObject)
async def create_character(request: Request, who: PrincipalDep) -> CharacterObject:
    body = await read_body(request, services(request).settings.max_upload_bytes)
    return await run_in_threadpool(services(request).cameos.create_character, who, body)


# Before /{video_id}: "characters" is not a video id.
@router.get("/characters", response_model=CharacterList)
def list_characters(request: Request, who: PrincipalDep, after: str | None = Query(None, max_length=64),
                    limit: int = Query(20, ge=0, le=100),
                    order: Literal["asc", "desc"] = "desc") -> CharacterList:
    return services(request).cameos.list_characters(who, after, limit, order)


@router.get("/characters/{character_id}", response_model=CharacterObject)
def get_character(character_id: str, request: Request, who: PrincipalDep) -> CharacterObject:
    return services(request).cameos.get_character(who, character_id)


@router.delete("/characters/{character_id}", response_model=DeletedCharacter)
def delete_character(character_id: str, request: Request, who: PrincipalDep) -> DeletedCharacter:
    return services(request).cameos.delete_character(who, character_id)


@router.get("/{video_id}", response_model=VideoObject)
def retrieve_video(video_id: str, request: Request, response: Response, who: PrincipalDep) -> VideoObject:
    return _poll_header(response, request, _queries(request).retrieve(who, video_id))


@router.delete("/{video_id}", response_model=DeletedVideo)
def delete_video(video_id: str, request: Request, who: PrincipalDep) -> DeletedVideo:
    return _commands(request).delete(who, video_id)


# GET and HEAD as two routes, so each has its own operation id in /openapi.json.
@router.get("/{video_id}/content", response_class=Response)
@router.head("/{video_id}/content", response_class=Response, operation_id="head_video_content")
def video_content(video_id: str, request: Request, who: PrincipalDep,
                  variant: Literal["video", "thumbnail", "spritesheet"] = "video") -> Response:
    # Range requests get 206 so players can seek and downloads can resume, on every storage backend;
    # HEAD lets a client learn the size first.
    return stored_response(request, _queries(request).content(who, video_id, variant))


@router.post("/{video_id}/remix", response_model=VideoObject)
async def remix_video(video_id: str, request: Request, response: Response, who: PrincipalDep) -> VideoObject:
    body = await read_body(request, services(request).settings.max_upload_bytes)
    video, headers = await run_in_threadpool(_commands(request).remix, who, video_id, body)
    response.headers.update(headers)
    return _poll_header(response, request, video)


# Mutoscope extension (OpenAI's API has no POST on a video): change who may see and remix it.
@router.post("/{video_id}", response_model=VideoObject)
async def update_video(video_id: str, request: Request, who: PrincipalDep) -> VideoObject:
    body = await read_body(request, 64 * 1024)
    return await run_in_threadpool(_commands(request).set_visibility, who, video_id, body.fields.get("visibility"))
