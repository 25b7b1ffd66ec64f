# frozen_string_literal: true

require "json"
require "open3"

require "kitchen"
require_relative "version"

module KitchenDriverApi
  # The binary answered with an `error` line (or broke the protocol). `code` is the protocol's
  # error code; `state`, when present, is what the caller must store (see PLUGIN-PROTOCOL.md).
  class ProtocolError < ::StandardError
    attr_reader :code, :state

    def initialize(message, code = "protocol", state = nil)
      @code = code
      @state = state
      super(message)
    end
  end

  # The `kitchen-driver` binary: found at KITCHEN_DRIVER_BIN or on PATH, checked once per
  # process with `plugin version`, then called one command at a time (JSON request on stdin,
  # JSON lines on stdout).
  class Binary
    NAME = "kitchen-driver"

    @checked = {}

    class << self
      # The binary to use, after the handshake. Raises Kitchen::UserError when it is missing or
      # speaks another protocol.
      def find(env = ENV)
        path = locate(env)
        @checked[path] ||= handshake(path)
        new(path)
      end

      private

      def locate(env)
        if (given = env["KITCHEN_DRIVER_BIN"]) && !given.empty?
          return given if File.file?(given) && File.executable?(given)

          raise Kitchen::UserError,
            "KITCHEN_DRIVER_BIN is #{given.inspect}, which is not an executable file; " \
            "point it at a built kitchen-driver (target/release/kitchen-driver) or unset it"
        end
        env.fetch("PATH", "").split(File::PATH_SEPARATOR).each do |dir|
          candidate = File.join(dir, NAME)
          return candidate if File.file?(candidate) && File.executable?(candidate)
        end
        raise Kitchen::UserError,
          "the #{NAME} binary was not found on PATH; install it " \
          "(cargo install --path kitchen-driver) or set KITCHEN_DRIVER_BIN to its path"
      end

      def handshake(path)
        out, err, status = Open3.capture3(path, "plugin", "version")
        answer = begin
          JSON.parse(out.lines.last.to_s)
        rescue JSON::ParserError
          nil
        end
        unless status.success? && answer.is_a?(Hash) && answer["type"] == "result"
          raise Kitchen::UserError,
            "#{path} is too old for the lxd_api/docker_api plugins: `#{NAME} plugin version` " \
            "failed (#{err.strip.lines.first.to_s.strip}); install a #{NAME} that has the " \
            "`plugin` command (protocol #{PROTOCOL})"
        end
        if answer["protocol"] != PROTOCOL
          raise Kitchen::UserError,
            "#{path} speaks plugin protocol #{answer["protocol"]} but this gem " \
            "(#{VERSION}) speaks #{PROTOCOL}; install matching versions of the gem and #{NAME}"
        end
        answer
      end
    end

    attr_reader :path

    def initialize(path)
      @path = path
    end

    # Runs `kitchen-driver plugin COMMAND` with `request`, yields each `log` and `output`
    # message as it arrives, and returns the `result` message. Raises ProtocolError on an
    # `error` message or a broken answer.
    def call(command, request)
      final = nil
      status = Open3.popen2(path, "plugin", command) do |stdin, stdout, wait|
        stdin.write(JSON.generate(request))
        stdin.close
        stdout.each_line do |line|
          message = parse(command, line)
          if %w{result error}.include?(message["type"])
            final = message
          elsif block_given?
            yield message
          end
        end
        wait.value
      end
      finish(command, final, status)
    end

    # The argument vector of an interactive login (for Kitchen::LoginCommand).
    def login_args(request)
      ["plugin", "login", "--request", JSON.generate(request)]
    end

    private

    def parse(command, line)
      JSON.parse(line)
    rescue JSON::ParserError
      raise ProtocolError, "#{path} plugin #{command} printed a line that is not JSON: #{line.strip}"
    end

    def finish(command, final, status)
      if final.nil?
        raise ProtocolError,
          "#{path} plugin #{command} ended (#{status}) without a result or error line"
      end
      if final["type"] == "error"
        raise ProtocolError.new(final["message"], final["code"], final["state"])
      end

      final
    end
  end
end
