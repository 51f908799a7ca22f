"""Typed views of the tlcm.v1 API's messages, as Client yields and returns them.

Each class mirrors one message of proto/tlcm/v1/tlcm_service.proto (its comments own the
meaning and units of every field); the generated classes are in tlcm.v1.tlcm_service_pb2.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple, Union

from tlcm.v1 import tlcm_service_pb2 as pb

# Image formats by the names the HTTP API uses, and back.
FORMATS = {
    "png": pb.IMAGE_FORMAT_PNG,
    "jpeg": pb.IMAGE_FORMAT_JPEG,
    "webp": pb.IMAGE_FORMAT_WEBP,
}
_FORMAT_NAMES = {value: name for name, value in FORMATS.items()}
_FORMAT_NAMES[pb.IMAGE_FORMAT_UNSPECIFIED] = "png"


def format_name(value: int) -> str:
    """"png", "jpeg" or "webp" for an ImageFormat enum value."""
    return _FORMAT_NAMES.get(value, "png")


@dataclasses.dataclass(frozen=True)
class Queued:
    """The request was admitted; `position` requests of its model are ahead of it."""
    request_id: str
    position: int


@dataclasses.dataclass(frozen=True)
class Started:
    """A batch holding images [first_image, first_image + num_images) started on `device`."""
    request_id: str
    device: str
    batch_size: int
    first_image: int
    num_images: int


@dataclasses.dataclass(frozen=True)
class Step:
    """Denoising step `step` (1-based) of `total_steps` finished for the batch's images."""
    request_id: str
    step: int
    total_steps: int
    first_image: int
    num_images: int


@dataclasses.dataclass(frozen=True)
class Preview:
    """A low-fidelity encoded preview of image `index` after `step` (latent resolution)."""
    request_id: str
    index: int
    step: int
    data: bytes = dataclasses.field(repr=False)
    format: str
    width: int
    height: int


@dataclasses.dataclass(frozen=True)
class Image:
    """A finished encoded image; `seed` reproduces it alone."""
    request_id: str
    index: int
    seed: int
    data: bytes = dataclasses.field(repr=False)
    format: str
    width: int
    height: int


@dataclasses.dataclass(frozen=True)
class Metrics:
    """What the request cost, in wall-clock milliseconds; the last event of a request."""
    request_id: str
    queue_ms: float
    text_encode_ms: float
    denoise_ms: float
    decode_ms: float
    image_encode_ms: float
    total_ms: float
    batch_size: int
    num_batches: int
    num_images: int
    device: str
    steps: int
    width: int
    height: int
    seed: int


Event = Union[Queued, Started, Step, Preview, Image, Metrics]


@dataclasses.dataclass(frozen=True)
class Model:
    """A configured model with its limits and readiness (ListModels)."""
    name: str
    family: str
    samplers: Tuple[str, ...]
    default_steps: int
    min_steps: int
    max_steps: int
    default_width: int
    default_height: int
    size_multiple: int
    max_pixels: int
    default_guidance_scale: float
    max_batch_size: int
    devices: Tuple[str, ...]
    ready: bool
    batching_mode: str  # "request" or "step": how the model's requests share denoiser calls


def event_from_proto(response: pb.GenerateResponse) -> Optional[Event]:
    """The typed event of one GenerateResponse; None for a kind this client does not know."""
    kind = response.WhichOneof("event")
    rid = response.request_id
    if kind == "queued":
        return Queued(rid, response.queued.position)
    if kind == "started":
        m = response.started
        return Started(rid, m.device, m.batch_size, m.first_image, m.num_images)
    if kind == "step":
        m = response.step
        return Step(rid, m.step, m.total_steps, m.first_image, m.num_images)
    if kind == "preview":
        m = response.preview
        return Preview(rid, m.index, m.step, m.data, format_name(m.format), m.width, m.height)
    if kind == "image":
        m = response.image
        return Image(rid, m.index, m.seed, m.data, format_name(m.format), m.width, m.height)
    if kind == "metrics":
        m = response.metrics
        return Metrics(rid, m.queue_ms, m.text_encode_ms, m.denoise_ms, m.decode_ms,
                       m.image_encode_ms, m.total_ms, m.batch_size, m.num_batches, m.num_images,
                       m.device, m.steps, m.width, m.height, m.seed)
    return None


def model_from_proto(m: pb.ModelDescription) -> Model:
    return Model(m.name, m.family, tuple(m.samplers), m.default_steps, m.min_steps, m.max_steps,
                 m.default_width, m.default_height, m.size_multiple, m.max_pixels,
                 m.default_guidance_scale, m.max_batch_size, tuple(m.devices), m.ready,
                 m.batching_mode)
