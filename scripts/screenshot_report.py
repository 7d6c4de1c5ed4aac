#!/usr/bin/env python3
"""Take the screenshot of a report that the README shows (``docs/report.png``).

    .venv/bin/python -m vlmscope demo                      # writes vlmscope-out/report.html
    .venv/bin/python scripts/screenshot_report.py          # -> docs/report.png

Headless Debian Chromium driven by Playwright (no browser download), at 1280x900, scrolled to
the blame section so the picture shows what vlmscope is for.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", nargs="?", type=Path,
                        default=ROOT / "vlmscope-out" / "report.html")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "report.png")
    parser.add_argument("--section", default="blame", help="the section to scroll to")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium")
    if chromium is None:
        print("error: Debian's chromium is not installed (apt-get install chromium)",
              file=sys.stderr)
        return 2
    if not args.report.exists():
        print(f"error: no report at {args.report}; run `vlmscope demo` first", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:  # Playwright gives the browser a new, empty profile
        browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(args.report.resolve().as_uri())
        page.wait_for_load_state("load")
        page.evaluate(f"document.getElementById('{args.section}').scrollIntoView()")
        args.output.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.output), full_page=False)
        browser.close()
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
