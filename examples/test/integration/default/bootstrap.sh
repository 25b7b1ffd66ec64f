#!/bin/sh
# Converge: the "provisioning code" under test. It writes a config file and a marker.
set -eu
mkdir -p /etc/hello
printf 'greeting=hello from %s\n' "$(hostname)" > /etc/hello/hello.conf
echo "converged by kitchen-driver (TEST_KITCHEN=${TEST_KITCHEN:-unset})"
