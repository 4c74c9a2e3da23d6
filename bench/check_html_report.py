"""Open a comparison's report.html in headless Chromium: the page loads without errors and every image
(plots and failure-gallery thumbnails) decodes; a screenshot is written for a human look.

    python bench/check_html_report.py                 # build a demo comparison in a temp dir, check it
    python bench/check_html_report.py PATH/report.html [--screenshot shot.png]

Needs a Chromium binary (Debian: ``apt-get install chromium``); CI never runs this script. The page is
checked twice: statically (every ``src`` is a ``data:`` URI, no script, stylesheet link or ``url(...)``
that could fetch anything) and in the browser, on a copy of the page with a probe script appended that
counts the images and how many failed to decode (``complete && naturalWidth > 0``) and catches script
errors, and writes the counts into the document title, read back with ``--dump-dom``.
Exit status 0 when everything loaded, 1 when something did not, 2 when no browser was found.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PROBE = """<script>
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message || e.type)); }, true);
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  var sizes = imgs.slice(0, 3).map(function (i) { return [i.naturalWidth, i.naturalHeight]; });
  document.title = 'PROBE ' + JSON.stringify({images: imgs.length, broken: bad.length,
    errors: window.__errors.length, sizes: sizes});
});
</script>"""


def find_browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def static_check(page: str) -> list[str]:
    """Problems that would make the page fetch something or run code."""
    problems = []
    for src in re.findall(r"""\bsrc\s*=\s*['"]([^'"]*)['"]""", page):
        if not src.startswith("data:"):
            problems.append(f"external src: {src[:80]}")
    if re.search(r"<script\b", page, re.I):
        problems.append("the page contains a script")
    if re.search(r"<link\b", page, re.I):
        problems.append("the page links a resource")
    for url in re.findall(r"url\(\s*['\"]?([^)'\"]*)", page):
        if not url.startswith("data:"):
            problems.append(f"CSS url(): {url[:80]}")
    return problems


def browser_check(browser: str, page: Path, screenshot: Path) -> dict:
    flags = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--disable-extensions",
        "--no-first-run",
        "--virtual-time-budget=10000",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.html"
        probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
        dom = subprocess.run(flags + ["--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
        shot = subprocess.run(
            flags + ["--window-size=1400,4400", f"--screenshot={screenshot}", page.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
        )
    title = re.search(r"<title>PROBE (\{.*?\})</title>", dom.stdout)
    result = json.loads(title.group(1)) if title else {"images": None, "broken": None, "errors": None}
    console = [
        line
        for line in (dom.stderr + shot.stderr).splitlines()
        if "CONSOLE" in line and ("Uncaught" in line or "Failed to load" in line or "ERROR" in line)
    ]
    result.update(
        dom_status=dom.returncode,
        screenshot_status=shot.returncode,
        console_errors=console,
        screenshot=str(screenshot) if screenshot.is_file() else None,
    )
    return result


def build_demo(root: Path) -> Path:
    """Two runs on small synthetic packs (real JPEG images, official pack format) and a published baseline."""
    import numpy as np

    from facebench.cli import main
    from facebench.io.binpack import write_bin
    from tests.fakes import jpeg_bytes, random_images

    data = root / "data"
    data.mkdir(parents=True)
    n = 600
    issame = np.tile(np.r_[np.ones(30, bool), np.zeros(30, bool)], 10)
    blobs = [jpeg_bytes(im) for im in random_images(2 * n, seed=5)]
    for name in ("lfw", "cfp_fp"):
        write_bin(data / f"{name}.bin", blobs, issame)
    rng = np.random.default_rng(0)
    ident, other = rng.standard_normal((n, 64)), rng.standard_normal((n, 64))
    for run, noise in (("a", 1.0), ("b", 1.1)):
        feats = root / f"feats_{run}"
        feats.mkdir()
        for k, name in enumerate(("lfw", "cfp_fp")):
            r = np.random.default_rng(k)
            f = np.empty((2 * n, 64), np.float32)
            f[0::2] = ident + noise * (1 + 0.3 * k) * r.standard_normal((n, 64))
            f[1::2] = np.where(issame[:, None], ident, other) + noise * (1 + 0.3 * k) * r.standard_normal((n, 64))
            np.save(feats / f"{name}.npy", f)
        assert (
            main(
                [
                    "-q",
                    "run",
                    "--features",
                    str(feats),
                    "-b",
                    "lfw,cfp_fp",
                    "--data-root",
                    str(data),
                    "--out",
                    str(root / f"run_{run}"),
                    "--no-progress",
                ]
            )
            == 0
        )
    out = root / "compare"
    assert (
        main(
            [
                "-q",
                "compare",
                str(root / "run_a"),
                str(root / "run_b"),
                "--published",
                "facexzoo/mv-softmax",
                "--published",
                "insightface_model_zoo/r100-ms1mv2-arcface",
                "--column",
                "lfw:tar_at_far.1e-02",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out / "report.html"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("page", nargs="?", type=Path, help="report.html to check (default: build a demo comparison)")
    parser.add_argument("--screenshot", type=Path, help="where to write the screenshot (default: beside the page)")
    args = parser.parse_args()
    browser = find_browser()
    workdir = None
    if args.page is None:
        workdir = Path(tempfile.mkdtemp(prefix="facebench-html-"))
        started = time.perf_counter()
        args.page = build_demo(workdir)
        print(f"built demo comparison in {time.perf_counter() - started:.1f} s: {args.page}")
    page_text = args.page.read_text(encoding="utf-8")
    problems = static_check(page_text)
    n_data = len(re.findall(r"src='data:image/", page_text))
    print(f"page: {args.page} ({len(page_text) / 1e6:.2f} MB, {n_data} embedded images)")
    print("static check: " + ("ok" if not problems else "; ".join(problems)))
    if browser is None:
        print("no Chromium found: install it (Debian: apt-get install chromium) to run the browser check")
        return 2
    screenshot = args.screenshot or args.page.with_name("report_screenshot.png")
    result = browser_check(browser, args.page.resolve(), screenshot.resolve())
    print(f"browser: {browser}")
    print(f"images in the page: {result['images']}, failed to decode: {result['broken']}, ", end="")
    print(f"script errors: {result['errors']}")
    print(f"first image sizes: {result.get('sizes')}")
    print(f"console errors: {len(result['console_errors'])}" + "".join(f"\n  {c}" for c in result["console_errors"]))
    print(f"screenshot: {result['screenshot']}")
    ok = (
        not problems
        and result["images"] == n_data
        and result["broken"] == 0
        and result["errors"] == 0
        and not result["console_errors"]
        and result["screenshot"] is not None
    )
    print("RESULT: " + ("ok" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
