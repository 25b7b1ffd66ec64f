# frozen_string_literal: true

require "kitchen"
require_relative "binary"

module KitchenDriverApi
  # What Kitchen::Transport::LxdApi and DockerApi share. They reach the instance that the
  # driver of the same name created, through `kitchen-driver plugin exec|upload|download|login`:
  # the runtime's own exec and file APIs, no SSH.
  module Transport
    # A connection (test-kitchen's Transport::Base::Connection contract).
    class Connection < Kitchen::Transport::Base::Connection
      # Runs `command` with `sh -c` in the instance, streaming its output to the logger as it
      # comes. A non-zero exit raises Kitchen::Transport::TransportFailed with the exit code.
      def execute(command)
        return if command.nil?

        logger.debug("[#{@label}] #{@instance_name} (#{command})")
        answer = call("exec", command:) do |m|
          logger << "#{m["data"]}\n" if m["type"] == "output"
        end
        code = answer["exit_code"]
        return if code == 0

        raise Kitchen::Transport::TransportFailed.new(
          "#{@label} exited (#{code}) for command: [#{command}]", code
        )
      end

      # Copies host files and directories into the directory `remote` (created if missing),
      # each under its own name.
      def upload(locals, remote)
        paths = Array(locals).map { |l| File.expand_path(l.to_s) }
        logger.debug("[#{@label}] uploading #{paths.join(", ")} to #{remote}")
        call("upload", locals: paths, remote: remote.to_s)
      end

      # Copies files and directories of the instance into the host directory `local`
      # (created if missing), each under its own name.
      def download(remotes, local)
        paths = Array(remotes).map(&:to_s)
        logger.debug("[#{@label}] downloading #{paths.join(", ")} to #{local}")
        call("download", remotes: paths, local: File.expand_path(local.to_s))
      end

      # An interactive shell through the binary (`kitchen login`).
      def login_command
        Kitchen::LoginCommand.new(@binary.path, @binary.login_args(@request))
      end

      # Runs `true` until the instance answers, at most `max_wait_until_ready` seconds.
      def wait_until_ready
        deadline = Time.now + @max_wait
        begin
          execute("true")
        rescue Kitchen::Transport::TransportFailed => e
          raise if Time.now >= deadline

          logger.debug("[#{@label}] #{@instance_name} not ready yet (#{e.message}); retrying")
          sleep 1
          retry
        end
      end

      private

      def init_options(options)
        super
        @binary = @options.delete(:binary)
        @request = @options.delete(:request)
        @label = @options.delete(:label)
        @instance_name = @options.delete(:instance_name)
        @max_wait = @options.delete(:max_wait_until_ready)
      end

      def call(command, extra, &block)
        @binary.call(command, @request.merge(extra), &block)
      rescue KitchenDriverApi::ProtocolError => e
        raise Kitchen::Transport::TransportFailed, "#{@label} #{command} failed: #{e.message}"
      end
    end

    # test-kitchen calls this once, when the plugin is first loaded.
    def verify_dependencies
      KitchenDriverApi::Binary.find
    end

    # A connection to the instance in `state`; yields it when given a block.
    def connection(state, &block)
      driver = instance.driver
      unless driver.respond_to?(:plugin_request) && driver.runtime == runtime
        raise Kitchen::UserError,
          "transport #{runtime}_api reaches instances of driver #{runtime}_api only; " \
          "instance #{instance.name} uses driver #{driver.name}: set `driver: #{runtime}_api`"
      end
      options = {
        logger:,
        binary: driver.binary,
        request: driver.plugin_request(state),
        label: "#{runtime}_api",
        instance_name: instance.name,
        max_wait_until_ready: config[:max_wait_until_ready],
      }
      Connection.new(options, &block)
    end
  end
end
