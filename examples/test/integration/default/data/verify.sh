#!/bin/sh
# Verify: the provisioning left what it promised.
set -eu
test -f /etc/hello/hello.conf || { echo "FAIL: /etc/hello/hello.conf missing"; exit 1; }
grep -q '^greeting=hello from ' /etc/hello/hello.conf || { echo "FAIL: wrong greeting"; exit 1; }
echo "PASS: /etc/hello/hello.conf is in place"
