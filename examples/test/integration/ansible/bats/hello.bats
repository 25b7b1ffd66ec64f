#!/usr/bin/env bats
# Verify for the `ansible` suite: what the role promised is in place.

@test "the service account exists and cannot log in" {
  run getent passwd hello
  [ "$status" -eq 0 ]
  [[ "$output" == *":/usr/sbin/nologin" ]]
}

@test "the config file is readable by the service group only" {
  [ "$(stat -c '%U:%G %a' /etc/hello/hello.conf)" = "root:hello 640" ]
}

@test "the config carries the greeting from extra_vars" {
  grep -qx 'greeting="hello from ansible"' /etc/hello/hello.conf
}

@test "facts were gathered from the instance itself" {
  grep -qx 'os="Debian 12"' /etc/hello/hello.conf
}

@test "the program prints the greeting" {
  run /usr/local/bin/hello
  [ "$status" -eq 0 ]
  [ "$output" = "hello from ansible" ]
}
