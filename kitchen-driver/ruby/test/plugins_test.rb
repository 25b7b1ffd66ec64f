# frozen_string_literal: true

require "test_helper"

require "kitchen/driver/lxd_api"
require "kitchen/driver/docker_api"
require "kitchen/transport/lxd_api"
require "kitchen/transport/docker_api"

# The binary's discovery and handshake.
class BinaryTest < Minitest::Test
  parallelize_me!

  def test_a_missing_binary_says_what_to_set
    e = assert_raises(Kitchen::UserError) do
      KitchenDriverApi::Binary.find("KITCHEN_DRIVER_BIN" => "/nonexistent/kitchen-driver")
    end
    assert_match(/KITCHEN_DRIVER_BIN is "\/nonexistent\/kitchen-driver", which is not an executable/, e.message)
    e = assert_raises(Kitchen::UserError) { KitchenDriverApi::Binary.find("PATH" => "/nonexistent") }
    assert_match(/not found on PATH/, e.message)
  end

  def test_a_binary_without_the_plugin_command_is_too_old
    Dir.mktmpdir do |dir|
      old = File.join(dir, "kitchen-driver")
      File.write(old, "#!/bin/sh\necho \"error: unrecognized subcommand '$1'\" >&2\nexit 1\n")
      File.chmod(0o755, old)
      e = assert_raises(Kitchen::UserError) do
        KitchenDriverApi::Binary.find("PATH" => dir)
      end
      assert_match(/too old.*unrecognized subcommand 'plugin'/, e.message)
    end
  end

  def test_a_binary_of_another_protocol_is_refused
    Dir.mktmpdir do |dir|
      other = File.join(dir, "kitchen-driver")
      File.write(other, "#!/bin/sh\necho '{\"type\":\"result\",\"command\":\"version\",\"protocol\":99}'\n")
      File.chmod(0o755, other)
      e = assert_raises(Kitchen::UserError) do
        KitchenDriverApi::Binary.find("KITCHEN_DRIVER_BIN" => other)
      end
      assert_match(/speaks plugin protocol 99 but this gem .* speaks 1/, e.message)
    end
  end

  def test_the_real_binary_passes_the_handshake
    b = KitchenDriverApi::Binary.find
    assert_equal File.expand_path(ENV.fetch("KITCHEN_DRIVER_BIN")), File.expand_path(b.path)
  end
end

# Loading as test-kitchen loads plugins, and the driver/transport pairing.
class LoadingTest < Minitest::Test
  include PluginTestHelpers
  parallelize_me!

  def test_plugins_load_by_name_with_their_api_versions
    inst = new_instance("lxd")
    assert_instance_of Kitchen::Driver::LxdApi, inst.driver
    assert_instance_of Kitchen::Transport::LxdApi, inst.transport
    assert_equal 2, Kitchen::Driver::LxdApi.diagnose[:api_version]
    assert_equal 2, Kitchen::Driver::DockerApi.diagnose[:api_version]
    assert_equal 1, Kitchen::Transport::DockerApi.diagnose[:api_version]
    assert_equal KitchenDriverApi::VERSION, Kitchen::Driver::DockerApi.diagnose[:version]
  end

  def test_a_transport_refuses_another_driver
    inst = StandinInstance.new(PluginTestHelpers.unique_name, "docker_api",
      { kitchen_root: Dir.tmpdir, image: "x" }, "lxd_api")
    e = assert_raises(Kitchen::UserError) { inst.transport.connection({}) }
    assert_match(/transport lxd_api reaches instances of driver lxd_api only.*DockerApi/, e.message)
  end

  def test_exec_before_create_fails_as_a_transport_failure
    inst = new_instance("docker")
    e = assert_raises(Kitchen::Transport::TransportFailed) do
      inst.transport.connection({}).execute("true")
    end
    assert_match(/not_created|has not yet been created|not been created/i, e.message)
    assert_nil e.exit_code
  end

  def test_a_missing_image_fails_the_action_and_leaves_nothing
    %w{lxd docker}.each do |runtime|
      inst = new_instance(runtime, image: "kitchen/no-such-image-#{Process.pid}")
      state = state_of(inst)
      e = assert_raises(Kitchen::ActionFailed) { inst.driver.create(state) }
      assert_match(/no-such-image/, e.message)
      refute state[:container_name] && container_exists?(runtime, state[:container_name])
    end
  end
end

# The whole cycle on each runtime: create, exec, upload, download, status, login, destroy.
class LifecycleTest < Minitest::Test
  include PluginTestHelpers
  parallelize_me!

  %w{lxd docker}.each do |runtime|
    define_method("test_#{runtime}_create_exec_upload_download_destroy") do
      inst = new_instance(runtime)
      state = state_of(inst)
      state[:last_action] = nil
      inst.driver.create(state)
      name = state[:container_name]
      assert name&.start_with?("kitchen-"), state.inspect
      assert_includes name, inst.name
      assert container_exists?(runtime, name)
      assert state.key?(:last_action), "kitchen's own keys are kept: #{state.inspect}"

      conn = inst.transport.connection(state)
      conn.wait_until_ready

      # exit codes
      conn.execute("echo to-out; echo to-err >&2")
      assert_includes inst.log.string, "to-out\n"
      assert_includes inst.log.string, "to-err\n"
      failed = assert_raises(Kitchen::Transport::TransportFailed) { conn.execute("exit 3") }
      assert_equal 3, failed.exit_code
      assert_equal "#{runtime}_api exited (3) for command: [exit 3]", failed.message
      assert_nil conn.execute(nil)

      # upload: a file and a directory tree, into a directory that does not exist yet
      src = Dir.mktmpdir("kdtest-rb-src-")
      @roots << src
      FileUtils.mkdir_p(File.join(src, "tree/sub dir"))
      File.write(File.join(src, "tree/sub dir/deep.txt"), "deep\n")
      File.write(File.join(src, "tree/top.sh"), "#!/bin/sh\necho top\n")
      File.chmod(0o755, File.join(src, "tree/top.sh"))
      File.write(File.join(src, "single.txt"), "single\n")
      conn.upload([File.join(src, "tree"), File.join(src, "single.txt")], "/tmp/kitchen/up")
      conn.execute("test \"$(cat '/tmp/kitchen/up/tree/sub dir/deep.txt')\" = deep")
      conn.execute("test \"$(/tmp/kitchen/up/tree/top.sh)\" = top")
      conn.execute("test \"$(cat /tmp/kitchen/up/single.txt)\" = single")
      conn.upload(File.join(src, "single.txt"), "/tmp/kitchen/one")
      conn.execute("test -f /tmp/kitchen/one/single.txt")

      # download: a directory and a file, into a new local directory
      conn.execute("mkdir -p /tmp/made/inner && echo made > /tmp/made/inner/m.txt && echo f > /tmp/f.txt")
      dst = File.join(src, "downloaded")
      conn.download(["/tmp/made", "/tmp/f.txt"], dst)
      assert_equal "made\n", File.read(File.join(dst, "made/inner/m.txt"))
      assert_equal "f\n", File.read(File.join(dst, "f.txt"))
      missing = assert_raises(Kitchen::Transport::TransportFailed) do
        conn.download("/tmp/no-such-file", dst)
      end
      assert_match(/no-such-file/, missing.message)

      # status (test-kitchen 4.1 `list --live`)
      status = inst.driver.status(state)
      assert_equal true, status[:live]
      assert_equal "running", status[:state]
      assert_equal name, status[:resource_id]

      # login: the command test-kitchen execs; with a script on stdin instead of a terminal,
      # the script runs in the instance (as `ssh host < script`)
      lc = conn.login_command
      assert_equal File.expand_path(bin), File.expand_path(lc.command)
      out, st = Open3.capture2e(lc.command, *lc.arguments, stdin_data: "echo logged-$((40+2))\nexit 7\n")
      assert_includes out, "logged-42"
      assert_equal 7, st.exitstatus

      inst.driver.destroy(state)
      refute container_exists?(runtime, name), "#{name} is left behind"
      refute state.key?(:container_name), state.inspect
      assert_equal "not_created", inst.driver.status(state)[:state]
      inst.driver.destroy(state) # twice is fine
    end

    define_method("test_#{runtime}_exec_streams_output_while_the_command_runs") do
      inst = new_instance(runtime)
      state = state_of(inst)
      inst.driver.create(state)
      # The command prints `first`, then waits for a file that only this test's logger creates
      # when it has received `first`, through a second connection. Were output delivered only at
      # the end, the file would never appear and the command would give up and exit 9.
      conn = inst.transport.connection(state)
      other = inst.transport.connection(state)
      streamed = Object.new
      streamed.define_singleton_method(:<<) do |data|
        other.execute("touch /tmp/go") if data == "first\n"
      end
      %i{debug info warn error}.each { |m| streamed.define_singleton_method(m) { |*_| nil } }
      conn.instance_variable_set(:@logger, streamed)
      conn.execute("echo first; i=0; while [ ! -f /tmp/go ]; do i=$((i+1)); " \
        "[ $i -gt 600 ] && exit 9; sleep 0.1; done; echo second")
    end
  end
end

# What the plugins create is kitchen-driver's: `kitchen-driver destroy` in the project finds it,
# through the ownership labels even without a state file.
class OwnershipTest < Minitest::Test
  include PluginTestHelpers
  parallelize_me!

  %w{lxd docker}.each do |runtime|
    define_method("test_#{runtime}_kitchen_driver_destroy_removes_plugin_made_containers") do
      inst = new_instance(runtime)
      root = inst.driver.plugin_request({})[:kitchen_root]
      suite, platform = inst.name.split("-rb").first, "rb"
      File.write(File.join(root, "kitchen.yml"), <<~YAML)
        driver:
          name: #{runtime}_api
          image: #{IMAGES.fetch(runtime)}
        platforms:
          - name: #{platform}
        suites:
          - name: #{suite}
      YAML
      state = state_of(inst)
      inst.driver.create(state)
      name = state[:container_name]
      assert container_exists?(runtime, name)
      out, st = Open3.capture2e(bin, "list", "--bare", chdir: root)
      assert st.success?, out
      assert_equal inst.name, out.strip
      out, st = Open3.capture2e(bin, "destroy", chdir: root)
      assert st.success?, out
      refute container_exists?(runtime, name), "kitchen-driver destroy left #{name}:\n#{out}"
    end
  end
end
