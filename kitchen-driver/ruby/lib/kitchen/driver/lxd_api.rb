# frozen_string_literal: true

require "kitchen"
require "kitchen_driver_api/driver"

module Kitchen
  module Driver
    # `driver: lxd_api`: kitchen-driver's `lxd` driver (LXD's own API, no SSH) as a
    # test-kitchen plugin. Its keys and defaults are those of kitchen-driver's `lxd` driver.
    class LxdApi < Kitchen::Driver::Base
      include KitchenDriverApi::Driver

      kitchen_driver_api_version 2
      plugin_version KitchenDriverApi::VERSION

      # The kitchen-driver driver this plugin runs.
      def runtime
        "lxd"
      end
    end
  end
end
