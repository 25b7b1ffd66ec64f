# frozen_string_literal: true

require_relative "lib/kitchen_driver_api/version"

Gem::Specification.new do |spec|
  spec.name = "kitchen-driver-api"
  spec.version = KitchenDriverApi::VERSION
  spec.summary = "test-kitchen drivers and transports lxd_api and docker_api over kitchen-driver"
  spec.description = "Runs test-kitchen instances on LXD and Docker through their own APIs " \
    "(no SSH) by calling the kitchen-driver binary's plugin protocol."
  spec.license = "Apache-2.0"
  spec.authors = ["kitchen-rs developers"]
  spec.files = Dir["lib/**/*.rb"] + ["README.md"]
  spec.require_paths = ["lib"]
  spec.required_ruby_version = ">= 3.1"
  # test-kitchen is needed at run time; the standard library is all the rest.
  spec.add_dependency "test-kitchen", ">= 4.0", "< 5"
end
