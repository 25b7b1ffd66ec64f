# frozen_string_literal: true

require "kitchen"
require "kitchen_driver_api/transport"

module Kitchen
  module Transport
    # `transport: lxd_api`: commands and files through LXD's own API (via kitchen-driver)
    # for instances of `driver: lxd_api`.
    class LxdApi < Kitchen::Transport::Base
      include KitchenDriverApi::Transport

      kitchen_transport_api_version 1
      plugin_version KitchenDriverApi::VERSION

      default_config :max_wait_until_ready, 60

      # The kitchen-driver driver whose instances this transport reaches.
      def runtime
        "lxd"
      end
    end
  end
end
