# frozen_string_literal: true

require "time"

require "kitchen"
require_relative "binary"

module KitchenDriverApi
  # What Kitchen::Driver::LxdApi and DockerApi share: create and destroy through
  # `kitchen-driver plugin`, the driver configuration sent as it is (the keys and defaults of
  # kitchen-driver's `lxd` and `docker` drivers apply, in the binary), the returned state
  # stored as test-kitchen's state.
  module Driver
    # test-kitchen calls this once, when the plugin is first loaded: find the binary now, so a
    # missing one is reported before any instance is touched.
    def verify_dependencies
      KitchenDriverApi::Binary.find
    end

    # Creates the instance (test-kitchen's Driver#create). Whatever the binary reports as
    # created is stored in `state`, even when it fails, so `destroy` finds it.
    def create(state)
      super
      run_stateful("create", state)
    end

    # Removes everything the instance owns; fine when nothing exists.
    def destroy(state)
      run_stateful("destroy", state)
    end

    # test-kitchen 4.1's `kitchen list --live`.
    def status(state)
      answer = binary.call("status", plugin_request(state))["status"]
      {
        live: answer["live"],
        state: answer["state"],
        source: "driver",
        resource_id: answer["resource_id"],
        message: answer["message"],
        checked_at: Time.now.utc.iso8601,
      }
    end

    # The protocol request for this instance and `state` (also used by the transports of
    # this gem, which reach the instance the driver made).
    def plugin_request(state, extra = {})
      {
        protocol: KitchenDriverApi::PROTOCOL,
        driver: runtime,
        instance: instance.name,
        kitchen_root: File.expand_path(config[:kitchen_root] || Dir.pwd),
        config: config.to_hash,
        state: state.to_h,
      }.merge(extra)
    end

    # The binary this driver calls.
    def binary
      @binary ||= KitchenDriverApi::Binary.find
    end

    private

    def run_stateful(command, state)
      answer = binary.call(command, plugin_request(state)) { |m| relay(m) }
      replace_state(state, answer["state"])
    rescue KitchenDriverApi::ProtocolError => e
      replace_state(state, e.state) if e.state
      raise Kitchen::ActionFailed, "#{name} #{command} failed: #{e.message}"
    end

    def relay(message)
      case message["type"]
      when "log" then info(message["message"])
      when "output" then info("       #{message["data"]}")
      end
    end

    # test-kitchen's state is a Hash with Symbol keys; the driver owns all of it but the
    # lifecycle keys, which the binary returns unchanged.
    def replace_state(state, new_state)
      state.clear
      new_state.each { |k, v| state[k.to_sym] = v }
    end
  end
end
