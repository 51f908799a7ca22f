"""The playground page (server/http/playground/index.html) in headless chromium, against
tlcm-server on the demo models with its HTTP port.

It submits a prompt through the page's form and waits until the page shows the final image,
decoded by the browser at the requested size, with a decoded preview per step before the
last and the timings;
then it submits a step count the model refuses and checks that the server's error is shown,
and cancels a running request (the server logs it CANCELLED).
The browser's screenshots are kept as test artifacts in <build>/test-artifacts/. Run by ctest
(playground_browser); needs TLCM_BUILD_DIR, Debian's chromium and chromium-driver.
"""

import pathlib
import shutil
import tempfile
import unittest

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tlcm_server import TlcmServer, build_dir

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
GENERATION_TIMEOUT_S = 120
STEPS = 3
SEED = 1234


def artifacts() -> pathlib.Path:
    folder = build_dir() / "test-artifacts"
    folder.mkdir(exist_ok=True)
    return folder


def setUpModule():
    global server
    server = TlcmServer()


def tearDownModule():
    code = server.stop()
    if code != 0:
        raise AssertionError(f"the server exited with {code} after SIGTERM, not 0")


class PlaygroundTest(unittest.TestCase):
    def setUp(self):
        for path in (CHROMIUM, CHROMEDRIVER):
            if not shutil.which(path):
                self.fail(f"{path} is missing: scripts/install-deps.sh installs chromium and "
                          "chromium-driver")
        profile = tempfile.TemporaryDirectory(prefix="tlcm-chromium-")
        self.addCleanup(profile.cleanup)
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--window-size=1280,1000",
                         f"--user-data-dir={profile.name}"):
            options.add_argument(argument)
        self.driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        self.addCleanup(self.driver.quit)
        self.driver.get(server.http_url + "/")
        self.wait_for_status({"ready"}, 30)

    def element(self, element_id):
        return self.driver.find_element(By.ID, element_id)

    def status(self):
        return self.element("status").get_attribute("data-state")

    def wait_for_status(self, states, timeout_s):
        try:
            WebDriverWait(self.driver, timeout_s, poll_frequency=0.1).until(
                lambda _: self.status() in states)
        except Exception:
            self.driver.save_screenshot(str(artifacts() / f"playground-{self.id()}-failed.png"))
            self.fail(f"the page's status stayed {self.status()!r} ({self.element('status').text!r}"
                      f"; error: {self.element('error').text!r}), not one of {sorted(states)}")

    def fill(self, element_id, text):
        field = self.element(element_id)
        field.clear()
        field.send_keys(text)

    def decoded_width(self, img):
        """The width the browser decoded `img` to; 0 when it could not decode it."""
        return self.driver.execute_script(
            "return arguments[0].complete ? arguments[0].naturalWidth : 0", img)

    def test_a_prompt_becomes_an_image_with_previews_and_timings(self):
        models = [o.get_attribute("value")
                  for o in self.element("model").find_elements(By.TAG_NAME, "option")]
        self.assertEqual(sorted(models), ["flux-demo", "sdxl-demo"])
        self.assertEqual(self.element("width").get_attribute("value"), "64")
        self.fill("prompt", "a lighthouse on a cliff at dawn")
        self.fill("steps", str(STEPS))
        self.fill("seed", str(SEED))
        self.element("generate").click()
        self.wait_for_status({"done", "error"}, GENERATION_TIMEOUT_S)
        self.driver.save_screenshot(str(artifacts() / "playground.png"))
        self.assertEqual(self.status(), "done", self.element("error").text)

        image = self.driver.find_element(By.CSS_SELECTOR, "#image-0 img")
        self.assertEqual(image.get_attribute("data-state"), "final")
        self.assertTrue(image.get_attribute("src").startswith("data:image/png;base64,"))
        self.assertEqual(self.decoded_width(image), 64)
        self.assertIn(f"seed {SEED}", self.element("image-0").text)

        # A preview after every step but the last, which the image itself follows.
        previews = self.driver.find_elements(By.CSS_SELECTOR, "#previews img")
        self.assertEqual(len(previews), STEPS - 1)
        for preview in previews:
            self.assertGreater(self.decoded_width(preview), 0)
        self.assertEqual([c.text for c in self.driver.find_elements(
            By.CSS_SELECTOR, "#previews figcaption")], [f"step {k}" for k in range(1, STEPS)])

        timings = self.element("metrics").text
        for name in ("queue", "denoise", "VAE decode", "total (server)", "device"):
            self.assertIn(name, timings)
        self.assertEqual(self.element("error").get_attribute("data-state"), "hidden")

        # Self-contained: everything the page loaded came from the server itself (or data: URLs).
        urls = self.driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        self.assertIn(server.http_url + "/v1/images/generations", urls)
        for url in urls:
            self.assertTrue(url.startswith((server.http_url + "/", "data:")), url)

    def test_a_refused_request_shows_the_servers_error(self):
        # The page keeps the steps field within the model's limits; lift that to reach the server.
        self.driver.execute_script("document.getElementById('steps').removeAttribute('max')")
        self.fill("steps", "99")
        self.element("generate").click()
        self.wait_for_status({"error", "done"}, GENERATION_TIMEOUT_S)
        self.driver.save_screenshot(str(artifacts() / "playground-error.png"))
        self.assertEqual(self.status(), "error")
        error = self.element("error")
        self.assertEqual(error.get_attribute("data-state"), "shown")
        self.assertTrue(error.is_displayed())
        self.assertIn("HTTP 400", error.text)
        self.assertIn("steps", error.text)
        self.assertEqual(self.driver.find_elements(By.CSS_SELECTOR, "#images img[data-state=final]"),
                         [])

    def test_cancel_ends_the_request_on_the_server(self):
        # The largest, slowest request: it is still running when Cancel is clicked.
        self.fill("steps", "8")
        self.fill("width", "256")
        self.fill("height", "256")
        self.element("generate").click()
        WebDriverWait(self.driver, GENERATION_TIMEOUT_S, poll_frequency=0.1).until(
            lambda _: float(self.element("progress").get_attribute("value")) >= 1)
        self.element("cancel").click()
        self.wait_for_status({"cancelled"}, 30)
        line = server.wait_for_line(
            lambda line: line.get("event") == "generate" and line.get("steps") == 8, 60)
        self.assertEqual(line["code"], "CANCELLED")
        self.assertEqual(self.element("error").get_attribute("data-state"), "hidden")


if __name__ == "__main__":
    unittest.main(verbosity=2)
