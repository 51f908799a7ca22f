"""Python client of tlcm-serve's gRPC API (proto/tlcm/v1/tlcm_service.proto).

    import tlcm
    with tlcm.Client("localhost:50051") as client:
        for event in client.generate("a lighthouse at dawn", model="sdxl-demo", seed=7):
            if isinstance(event, tlcm.Image):
                open(f"image-{event.index}.png", "wb").write(event.data)

The generated messages and stubs are in tlcm.v1 (tlcm_service_pb2, tlcm_service_pb2_grpc).
"""

from tlcm.client import Client, Error
from tlcm.events import Event, Image, Metrics, Model, Preview, Queued, Started, Step

__all__ = ["Client", "Error", "Event", "Image", "Metrics", "Model", "Preview", "Queued",
           "Started", "Step"]
