"""End-to-end test of the Python gRPC client (client/python) against tlcm-server on the demo models.

The package is installed the way a user installs it (pip, stubs generated from proto/ while it
builds) into a temporary folder, then talks to two servers: a plaintext one, and one with TLS
and a bearer token. Run by ctest (python_client); needs TLCM_BUILD_DIR.
"""

import pathlib
import shutil
import subprocess
import sys
import tempfile
import unittest
import zlib

from tlcm_server import REPO, TlcmServer

TOKEN = "python-client-test-token"


def install_client(into: pathlib.Path):
    """pip-installs client/python into `into` (a copy of it, so the checkout stays clean)."""
    source = into / "source"
    shutil.copytree(REPO / "client" / "python", source,
                    ignore=shutil.ignore_patterns("build", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                    "--no-build-isolation", "--target", str(into / "site"), str(source)],
                   check=True, env={"TLCM_PROTO_DIR": str(REPO / "proto"), "PATH": "/usr/bin:/bin"})
    sys.path.insert(0, str(into / "site"))


def png_size(data: bytes):
    """(width, height) of an 8-bit RGB PNG after decoding all of its pixel rows."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if zlib.crc32(kind + body) != int.from_bytes(data[pos + 8 + length:pos + 12 + length],
                                                     "big"):
            raise AssertionError(f"bad CRC in chunk {kind!r}")
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height = int.from_bytes(header[0:4], "big"), int.from_bytes(header[4:8], "big")
    assert header[8:10] == b"\x08\x02", "not 8-bit RGB"
    assert len(zlib.decompress(idat)) == height * (1 + 3 * width), "pixel data of the wrong size"
    return width, height


def make_tls_files(folder: pathlib.Path):
    """A self-signed certificate for localhost / 127.0.0.1 and its key (openssl CLI)."""
    cert, key = folder / "server.crt", folder / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def setUpModule():
    global tlcm, workdir, plain, secure, certificate
    workdir = tempfile.TemporaryDirectory(prefix="tlcm-python-client-")
    folder = pathlib.Path(workdir.name)
    install_client(folder)
    import tlcm  # noqa: F401  (installed just above)
    cert, key = make_tls_files(folder)
    certificate = cert.read_bytes()
    tokens = folder / "tokens"
    tokens.write_text(TOKEN + "\n")
    plain = TlcmServer()
    secure = TlcmServer("--tls_cert", str(cert), "--tls_key", str(key),
                        "--auth_token_file", str(tokens))


def tearDownModule():
    codes = [server.stop() for server in (plain, secure)]
    workdir.cleanup()
    if codes != [0, 0]:
        raise AssertionError(f"the servers exited with {codes} after SIGTERM, not 0")


class PlaintextTest(unittest.TestCase):
    def setUp(self):
        self.client = tlcm.Client(plain.target)

    def tearDown(self):
        self.client.close()

    def test_list_models_describes_the_demo_models(self):
        models = {m.name: m for m in self.client.list_models(timeout=30)}
        self.assertEqual(set(models), {"sdxl-demo", "flux-demo"})
        self.assertEqual(models["sdxl-demo"].family, "sdxl")
        self.assertEqual(models["flux-demo"].family, "flux")
        for m in models.values():
            self.assertTrue(m.ready)
            self.assertEqual((m.default_width, m.default_height), (64, 64))
            self.assertLessEqual(m.min_steps, m.default_steps)
            self.assertLessEqual(m.default_steps, m.max_steps)
            self.assertTrue(m.samplers)
            self.assertIn(m.batching_mode, ("request", "step"))

    def test_generate_streams_typed_events_in_order(self):
        events = list(self.client.generate("a lighthouse on a cliff at dawn", model="sdxl-demo",
                                           steps=3, seed=42, previews=True, request_id="py-1",
                                           timeout=120))
        kinds = [type(e).__name__ for e in events]
        # No preview after the last step: the image itself follows.
        self.assertEqual(kinds, ["Queued", "Started", "Step", "Preview", "Step", "Preview", "Step",
                                 "Image", "Metrics"])
        self.assertEqual({e.request_id for e in events}, {"py-1"})
        self.assertEqual([e.step for e in events if isinstance(e, tlcm.Step)], [1, 2, 3])
        self.assertEqual(events[1].device, "cpu")
        previews = [e for e in events if isinstance(e, tlcm.Preview)]
        self.assertEqual([(p.index, p.step, p.format) for p in previews],
                         [(0, 1, "png"), (0, 2, "png")])
        for preview in previews:
            self.assertEqual(png_size(preview.data), (preview.width, preview.height))
            self.assertLess(preview.width, 64)
        image = events[7]
        self.assertEqual((image.index, image.seed, image.format), (0, 42, "png"))
        self.assertEqual(png_size(image.data), (64, 64))
        metrics = events[8]
        self.assertEqual((metrics.steps, metrics.seed, metrics.num_images), (3, 42, 1))
        self.assertEqual((metrics.width, metrics.height), (64, 64))
        self.assertGreater(metrics.total_ms, 0)
        self.assertGreaterEqual(metrics.total_ms, metrics.denoise_ms)

    def images(self, **kwargs):
        return [e for e in self.client.generate(timeout=120, **kwargs) if isinstance(e, tlcm.Image)]

    def test_the_same_seed_gives_the_same_image(self):
        request = dict(prompt="a red bicycle", model="sdxl-demo", steps=2, seed=2**63 + 5)
        first, second = self.images(**request), self.images(**request)
        self.assertEqual(first[0].seed, 2**63 + 5)
        self.assertEqual(first[0].data, second[0].data)
        other = self.images(**dict(request, seed=6))
        self.assertNotEqual(first[0].data, other[0].data)

    def test_flux_images_in_jpeg_and_webp(self):
        jpeg = self.images(prompt="a fox", model="flux-demo", steps=2, seed=3, num_images=2,
                           format="jpeg", quality=80)
        self.assertEqual([(i.index, i.seed, i.format) for i in jpeg],
                         [(0, 3, "jpeg"), (1, 4, "jpeg")])
        for image in jpeg:
            self.assertEqual(image.data[:3], b"\xff\xd8\xff")
            self.assertEqual(image.data[-2:], b"\xff\xd9")
        webp = self.images(prompt="a fox", model="flux-demo", steps=2, format="webp")
        self.assertEqual((webp[0].data[:4], webp[0].data[8:12]), (b"RIFF", b"WEBP"))

    def test_invalid_argument_names_the_field(self):
        with self.assertRaises(tlcm.Error) as caught:
            list(self.client.generate("a cat", model="sdxl-demo", steps=99, timeout=30))
        self.assertEqual(caught.exception.code.name, "INVALID_ARGUMENT")
        self.assertIn("steps", caught.exception.message)

    def test_unknown_model_is_not_found(self):
        with self.assertRaises(tlcm.Error) as caught:
            list(self.client.generate("a cat", model="no-such-model", timeout=30))
        self.assertEqual(caught.exception.code.name, "NOT_FOUND")

    def test_unknown_format_is_refused_before_sending(self):
        with self.assertRaisesRegex(ValueError, "format: must be one of png, jpeg, webp"):
            self.client.generate("a cat", model="sdxl-demo", format="gif")

    def test_a_deadline_ends_the_call(self):
        with self.assertRaises(tlcm.Error) as caught:
            list(self.client.generate("a cat", model="sdxl-demo", steps=8, timeout=0.001))
        self.assertEqual(caught.exception.code.name, "DEADLINE_EXCEEDED")

    def test_leaving_the_loop_cancels_the_request(self):
        # The largest, slowest request, and no deadline (the server refuses one it expects to
        # miss): it is still running when the loop leaves after its first step.
        events = self.client.generate("a slow cat", model="sdxl-demo", steps=8, width=256,
                                      height=256, request_id="py-cancel")
        for event in events:
            if isinstance(event, tlcm.Step):
                break
        events.close()
        line = plain.wait_for_line(lambda line: line.get("request_id") == "py-cancel", 60)
        self.assertEqual(line["code"], "CANCELLED")


class TlsAndTokenTest(unittest.TestCase):
    def client(self, **kwargs):
        client = tlcm.Client(secure.target, **kwargs)
        self.addCleanup(client.close)
        return client

    def test_tls_with_the_token_generates(self):
        client = self.client(root_certificates=certificate, token=TOKEN, server_name="localhost")
        self.assertEqual(len(client.list_models(timeout=30)), 2)
        images = [e for e in client.generate("a boat", model="sdxl-demo", steps=2, timeout=120)
                  if isinstance(e, tlcm.Image)]
        self.assertEqual(png_size(images[0].data), (64, 64))

    def test_a_missing_or_wrong_token_is_unauthenticated(self):
        for token in (None, "wrong"):
            client = self.client(root_certificates=certificate, token=token)
            with self.assertRaises(tlcm.Error) as caught:
                client.list_models(timeout=30)
            self.assertEqual(caught.exception.code.name, "UNAUTHENTICATED", token)

    def test_plaintext_cannot_reach_a_tls_port(self):
        with self.assertRaises(tlcm.Error) as caught:
            self.client(token=TOKEN).list_models(timeout=5)
        self.assertEqual(caught.exception.code.name, "UNAVAILABLE")


if __name__ == "__main__":
    unittest.main(verbosity=2)
