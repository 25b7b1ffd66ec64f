# frozen_string_literal: true

# Runs against the real kitchen-driver binary (KITCHEN_DRIVER_BIN, set by the Rust test
# tests/ruby_plugins.rs to the freshly built one) and the real LXD daemon and Docker engine,
# with test-kitchen's base classes played by the stand-in in test/standin (labelled there).
#
#   KITCHEN_DRIVER_BIN=target/debug/kitchen-driver \
#     ruby -Ikitchen-driver/ruby/lib -Ikitchen-driver/ruby/test/standin \
#       -Ikitchen-driver/ruby/test kitchen-driver/ruby/test/plugins_test.rb

require "minitest/autorun"
require "fileutils"
require "open3"
require "stringio"
require "tmpdir"
require "logger"

require "kitchen"

# The few Instance methods plugins call (lib/kitchen/instance.rb): name, logger, driver,
# transport. Part of the stand-in.
class StandinInstance
  attr_reader :name, :logger, :driver, :transport, :log

  def initialize(name, driver_name, driver_config, transport_name = driver_name)
    @name = name
    @log = StringIO.new
    @logger = ::Logger.new(@log)
    @driver = Kitchen::Plugin.load(Kitchen::Driver, driver_name, driver_config)
    @transport = Kitchen::Plugin.load(Kitchen::Transport, transport_name, {})
    @driver.finalize_config!(self)
    @transport.finalize_config!(self)
  end
end

module PluginTestHelpers
  IMAGES = { "lxd" => "kitchen/busybox", "docker" => "kitchen/busybox:latest" }.freeze

  @counter = 0
  @lock = Mutex.new

  # `kdtest-<pid>-<n>-rb`: the prefix every test resource of this project carries.
  def self.unique_name
    n = @lock.synchronize { @counter += 1 }
    "kdtest-#{Process.pid}-#{n}-rb"
  end

  def bin
    ENV.fetch("KITCHEN_DRIVER_BIN")
  end

  # A temporary kitchen project (its directory is the kitchen_root) and an instance of it,
  # destroyed through the driver at the end of the test, even when the test fails.
  def new_instance(runtime, extra_config = {})
    root = Dir.mktmpdir("kdtest-rb-")
    @roots << root
    config = { kitchen_root: root, image: IMAGES.fetch(runtime) }.merge(extra_config)
    inst = StandinInstance.new(PluginTestHelpers.unique_name, "#{runtime}_api", config)
    @instances << inst
    inst
  end

  def setup
    @roots = []
    @instances = []
    @states = {}
  end

  def teardown
    @instances.each do |inst|
      state = @states[inst] || {}
      begin
        inst.driver.destroy(state)
      rescue StandardError => e
        warn "teardown: destroying #{inst.name} failed: #{e.message}"
      end
    end
    @roots.each { |r| FileUtils.rm_rf(r) }
  end

  # The state of `inst`, kept by the test as test-kitchen's state file would be.
  def state_of(inst)
    @states[inst] ||= {}
  end

  # Whether the runtime still has a container by this name (asked with its own CLI).
  def container_exists?(runtime, name)
    if runtime == "lxd"
      _out, _err, st = Open3.capture3("lxc", "info", name)
    else
      _out, _err, st = Open3.capture3("docker", "inspect", "--type", "container", name)
    end
    st.success?
  end
end
