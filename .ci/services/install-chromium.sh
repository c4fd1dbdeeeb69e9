#!/usr/bin/env bash
# Debian's headless Chromium and its WebDriver, for the page tests of `sciwm serve`
# (tests/integration/serve/). Safe to run again: does nothing when both are installed.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=900 update -qq
apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends chromium chromium-driver
/usr/bin/chromium --version
