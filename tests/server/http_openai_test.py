#!/usr/bin/env python3
"""The official `openai` Python package, unchanged, against a running tlcm server's HTTP port.

    http_openai_test.py --port PORT [--model fake] [--size 64x64] [--token TOKEN]
                        [--adapters clay,ink]

Checks client.models.list(), client.images.generate(..., response_format="b64_json") (n=2,
PNG, and JPEG through output_format) with the images decoded, a streamed generate with partial
images, client.images.edit(image=..., mask=..., prompt=...) (img2img and inpainting, our
strength / steps / seed through extra_body), style adapters through extra_body={"loras": [...]}
(listed by the model, used, a bad scale and an unknown name refused), and that an error status
arrives as the package's typed exception. Exits 1 on failure.
"""
import argparse
import base64
import struct
import sys
import zlib

import openai

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"


def solid_png(width, height, value):
    """An RGB PNG of one grey `value`, written with zlib alone."""
    def chunk(kind, data):
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
    rows = b"".join(b"\x00" + bytes([value]) * (3 * width) for _ in range(height))
    return (PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def png_size(data):
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def check(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default="fake")
    parser.add_argument("--size", default="64x64")
    parser.add_argument("--token", default="unused")
    parser.add_argument("--adapters", default="clay,ink",
                        type=lambda text: [name for name in text.split(",") if name],
                        help="style adapters the model offers, comma-separated ('' = none)")
    args = parser.parse_args()
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{args.port}/v1", api_key=args.token,
                           max_retries=0, timeout=120)
    width, height = (int(v) for v in args.size.split("x"))

    models = [m.id for m in client.models.list()]
    check(args.model in models, f"models.list() gave {models}")

    result = client.images.generate(model=args.model, prompt="a lighthouse on a cliff at dawn",
                                    n=2, size=args.size, response_format="b64_json",
                                    extra_body={"seed": 42, "steps": 2})
    check(len(result.data) == 2, f"{len(result.data)} images")
    for image in result.data:
        png = base64.b64decode(image.b64_json)
        check(png.startswith(PNG_SIGNATURE), "not a PNG")
        check(int.from_bytes(png[16:20], "big") == width and
              int.from_bytes(png[20:24], "big") == height, "wrong PNG size")
    check(result.created > 1_700_000_000, f"created {result.created}")
    print(f"openai {openai.__version__}: images.generate n=2 {args.size}: 2 PNGs, "
          f"metrics {result.model_extra.get('tlcm', {}).get('metrics')}")

    jpeg = client.images.generate(model=args.model, prompt="a red cube", size=args.size,
                                  response_format="b64_json", output_format="jpeg",
                                  output_compression=80)
    check(base64.b64decode(jpeg.data[0].b64_json).startswith(JPEG_SIGNATURE), "not a JPEG")
    print("openai: output_format=jpeg: a JPEG")

    kinds = []
    for event in client.images.generate(model=args.model, prompt="a red cube", size=args.size,
                                        stream=True, partial_images=2,
                                        extra_body={"steps": 2}):
        kinds.append(event.type)
        if event.type == "image_generation.completed":
            check(base64.b64decode(event.b64_json).startswith(PNG_SIGNATURE), "streamed image")
    check("image_generation.partial_image" in kinds, f"no partial image in {kinds}")
    check("image_generation.completed" in kinds, f"no completed image in {kinds}")
    print(f"openai: stream=True: {len(kinds)} events, "
          f"{kinds.count('image_generation.partial_image')} partial images")

    # Edits: the output takes the input's size (rounded down to the model's multiple of 8).
    edit = client.images.edit(model=args.model,
                              image=("in.png", solid_png(40, 37, 90), "image/png"),
                              prompt="the same scene at night", n=2, response_format="b64_json",
                              extra_body={"strength": 0.5, "steps": 4, "seed": 7})
    check(len(edit.data) == 2, f"{len(edit.data)} edited images")
    for image in edit.data:
        data = base64.b64decode(image.b64_json)
        check(data.startswith(PNG_SIGNATURE), "edit: not a PNG")
        check(png_size(data) == (40, 32), f"edit: size {png_size(data)}")
    inpainted = client.images.edit(model=args.model,
                                   image=("in.png", solid_png(48, 48, 90), "image/png"),
                                   mask=("mask.png", solid_png(48, 48, 255), "image/png"),
                                   prompt="a red cube", size="32x32", response_format="b64_json")
    check(png_size(base64.b64decode(inpainted.data[0].b64_json)) == (32, 32), "inpainted size")
    print("openai: images.edit: img2img n=2 40x37 -> 40x32, inpainting with a mask -> 32x32")
    try:
        client.images.edit(model=args.model, image=("in.png", b"not a picture", "image/png"),
                           prompt="x", response_format="b64_json")
        check(False, "an undecodable image was accepted")
    except openai.BadRequestError as e:
        check(e.param == "image", f"edit error param {e.param}")
        print(f"openai: an undecodable image raises BadRequestError: {e.message[:80]}")
    if args.adapters:
        # Style adapters ride in extra_body; the model list names the ones the model offers.
        offered = next(m for m in client.models.list() if m.id == args.model).model_extra
        offered = offered.get("tlcm", {}).get("adapters", [])
        check(sorted(args.adapters) == offered, f"adapters listed {offered}")
        loras = [{"name": name, "scale": 0.5} for name in args.adapters]
        styled = client.images.generate(model=args.model, prompt="a red cube", size=args.size,
                                        response_format="b64_json",
                                        extra_body={"loras": loras})
        check(base64.b64decode(styled.data[0].b64_json).startswith(PNG_SIGNATURE), "styled")
        try:
            client.images.generate(model=args.model, prompt="x", response_format="b64_json",
                                   extra_body={"loras": [{"name": args.adapters[0],
                                                          "scale": "high"}]})
            check(False, "a scale that is no number was accepted")
        except openai.BadRequestError as e:
            check(e.param == "loras[0].scale", f"param {e.param}")
        try:
            client.images.generate(model=args.model, prompt="x", response_format="b64_json",
                                   extra_body={"loras": [{"name": "no-such-style"}]})
            check(False, "an unknown adapter was accepted")
        except openai.NotFoundError as e:
            check("no-such-style" in e.message, e.message)
        print(f"openai: extra_body loras {loras}: a PNG; a bad scale and an unknown adapter "
              "are refused")

    try:
        client.images.generate(model=args.model, prompt="x", size="13x13",
                               response_format="b64_json")
        check(False, "a bad size was accepted")
    except openai.BadRequestError as e:
        check(e.status_code == 400, f"status {e.status_code}")
        print(f"openai: a bad size raises BadRequestError: {e.message[:80]}")
    try:
        client.images.generate(model="no-such-model", prompt="x", response_format="b64_json")
        check(False, "an unknown model was accepted")
    except openai.NotFoundError as e:
        print(f"openai: an unknown model raises NotFoundError: {e.message[:80]}")
    print("openai package test: passed")


if __name__ == "__main__":
    main()
