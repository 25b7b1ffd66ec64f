# frozen_string_literal: true

module KitchenDriverApi
  # The gem's version.
  VERSION = "0.1.0"

  # The plugin protocol version this gem speaks (PLUGIN-PROTOCOL.md); the binary's
  # `plugin version` must answer the same number.
  PROTOCOL = 1
end
