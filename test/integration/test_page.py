"""The page at / in a real browser: Debian's Chromium, headless, driven by puppeteer-core
(test/browser/page_test.mjs) against a real daemon. Screenshots go to <build>/browser/."""

import shutil
import sys

from harness import *  # noqa: F403
from harness import BUILD_DIR

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BROWSER_DIR = os.path.join(ROOT, "test", "browser")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

# Each case of page_test.mjs, by the start of the name it prints.
CASES = {
    "rows": "rows: every metric",
    "hostile": "a hostile name is text",
    "filter": "the filter box",
    "sort": "clicking a header sorts",
    "live": "a new value appears without a reload",
    "no_javascript": "without JavaScript",
    "ten_thousand": "10,000 metrics",
}


def missing():
    if shutil.which("node") is None:
        return "node is not installed (tools/setup.sh installs nodejs)"
    if not os.access(CHROMIUM, os.X_OK):
        return "%s is not installed (tools/setup.sh installs chromium)" % CHROMIUM
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "puppeteer-core")):
        return "puppeteer-core is not installed (npm ci --prefix test/browser)"
    return None


@unittest.skipIf(missing(), missing())
class PageInBrowserTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.shots = os.path.join(os.path.abspath(BUILD_DIR), "browser")
        with Server() as s:
            r = subprocess.run(["node", os.path.join(BROWSER_DIR, "page_test.mjs"), "http://127.0.0.1:%d" % s.port,
                                cls.shots], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=240,
                               check=False, env=dict(os.environ, CHROMIUM=CHROMIUM))
        cls.output = r.stdout.decode(errors="replace")
        print(cls.output, file=sys.stderr)
        cls.lines = cls.output.splitlines()

    def case(self, key):
        prefix = CASES[key]
        if any(line.startswith("ok " + prefix) for line in self.lines):
            return
        failed = [line for line in self.lines if line.startswith("not ok " + prefix)]
        self.fail(failed[0] if failed else "case did not run:\n" + self.output[-3000:])

    def test_rows(self):
        self.case("rows")

    def test_hostile_name_is_text(self):
        self.case("hostile")

    def test_filter(self):
        self.case("filter")

    def test_sort(self):
        self.case("sort")

    def test_live_refresh_without_reload(self):
        self.case("live")

    def test_without_javascript(self):
        self.case("no_javascript")

    def test_ten_thousand_metrics(self):
        self.case("ten_thousand")

    def test_screenshots_saved(self):
        for name in ("page.png", "page-no-javascript.png", "page-10000.png"):
            path = os.path.join(self.shots, name)
            self.assertTrue(os.path.isfile(path), path)
            with open(path, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")



if __name__ == "__main__":
    unittest.main()
