# frozen_string_literal: true

# STAND-IN for test-kitchen, for this gem's tests only. test-kitchen cannot be installed here
# (no RubyGems registry), so this file provides the smallest part of test-kitchen 4.1.0's
# plugin API that the lxd_api/docker_api plugins use, following its source (commit f1d01d3c):
#
#   lib/kitchen/errors.rb               the error classes
#   lib/kitchen/lazy_hash.rb            config values that are blocks, evaluated on read
#   lib/kitchen/logging.rb              debug/info/warn/error delegated to `logger`
#   lib/kitchen/configurable.rb         init_config, finalize_config!, default_config, [],
#                                       a private `config`, `name`, verify_dependencies
#   lib/kitchen/plugin_base.rb          Plugin::Base
#   lib/kitchen/plugin.rb               Plugin.load: require "kitchen/<type>/<name>", camel case
#   lib/kitchen/driver/base.rb          Driver::Base (create runs pre_create_command)
#   lib/kitchen/transport/base.rb       Transport::Base, Base::Connection, TransportFailed
#   lib/kitchen/login_command.rb        LoginCommand
#
# It is not test-kitchen: no Instance, no state files, no CLI. The tests' StandinInstance
# plays the few Instance methods plugins call (name, logger, driver, transport).

require "logger"
require "English"

module Kitchen
  class << self
    attr_writer :logger

    def logger
      @logger ||= ::Logger.new($stdout)
    end
  end

  class StandardError < ::StandardError
    attr_reader :original

    def initialize(msg, original = $ERROR_INFO)
      super(msg)
      @original = original
    end
  end

  class UserError < StandardError; end
  class ClientError < StandardError; end
  class TransientFailure < StandardError; end
  class ActionFailed < TransientFailure; end
  class InstanceFailure < TransientFailure; end

  # Shell commands on the host (Driver::Base includes it); only what Driver::Base uses.
  class ShellCommandFailed < TransientFailure; end

  module Util
    def self.camel_case(str)
      str.to_s.split(/_|-/).map(&:capitalize).join
    end

    def self.snake_case(str)
      str.to_s.gsub(/([A-Z]+)([A-Z][a-z])/, '\1_\2').gsub(/([a-z\d])([A-Z])/, '\1_\2').downcase
    end
  end

  class LazyHash
    include Enumerable

    def initialize(obj, context)
      @obj = obj
      @context = context
    end

    def [](key)
      proc_or_val(@obj[key])
    end

    def []=(key, value)
      @obj[key] = value
    end

    def key?(key)
      @obj.key?(key)
    end

    def keys
      @obj.keys
    end

    def to_hash
      @obj.each_key.to_h { |k| [k, self[k]] }
    end

    def each(&block)
      to_hash.each(&block)
    end

    private

    def proc_or_val(thing)
      thing.respond_to?(:call) ? thing.call(@context) : thing
    end
  end

  module Logging
    %i{banner debug info warn error fatal}.each do |meth|
      define_method(meth) { |*args, &block| logger.public_send(meth, *args, &block) }
    end
  end

  module Configurable
    def self.included(base)
      base.extend(ClassMethods)
    end

    attr_reader :instance

    def finalize_config!(instance)
      raise ClientError, "Instance must be provided to #{self}" if instance.nil?

      @instance = instance
      self
    end

    def [](attr)
      config[attr]
    end

    def name
      self.class.name.split("::").last
    end

    def verify_dependencies; end

    def diagnose
      config.keys.sort.to_h { |k| [k, config[k]] }
    end

    private

    attr_reader :config

    def init_config(config)
      @config = LazyHash.new(config, self)
      self.class.defaults.each do |attr, value|
        @config[attr] = value unless @config.key?(attr)
      end
    end

    def logger
      instance ? instance.logger : Kitchen.logger
    end

    module ClassMethods
      def plugin_version(version)
        @plugin_version = version
      end

      def diagnose
        { class: name, version: @plugin_version ||= nil, api_version: @api_version ||= nil }
      end

      def default_config(attr, value = nil, &block)
        defaults[attr] = block_given? ? block : value
      end

      def defaults
        @defaults ||= {}.merge(superclass.respond_to?(:defaults) ? superclass.defaults : {})
      end
    end
  end

  module Plugin
    class Base
      class << self
        attr_reader :serial_actions
      end
    end

    def self.load(type, plugin, config)
      type_name = Kitchen::Util.snake_case(type.name.split("::").last)
      first_load = require("kitchen/#{type_name}/#{plugin}")
      klass = type.const_get(Kitchen::Util.camel_case(plugin))
      object = klass.new(config)
      object.verify_dependencies if first_load
      object
    rescue UserError
      raise
    rescue NameError => e
      raise ClientError, "Could not load the '#{plugin}' #{type_name}. Error: #{e.message}"
    rescue LoadError => e
      raise ClientError, "Could not load the '#{plugin}' #{type_name} from the load path. #{e.message}"
    end
  end

  class LoginCommand
    attr_reader :command, :arguments, :options

    def initialize(command, arguments, options = {})
      @command = command
      @arguments = Array(arguments)
      @options = options
    end

    def exec_args
      [command, *arguments, options]
    end
  end

  module Driver
    class Base < Kitchen::Plugin::Base
      include Configurable
      include Logging

      default_config :pre_create_command, nil

      def initialize(config = {})
        init_config(config)
      end

      def create(state) # rubocop:disable Lint/UnusedMethodArgument
        pre_create_command
      end

      def destroy(state); end

      def self.kitchen_driver_api_version(version)
        @api_version = version
      end

      private

      # test-kitchen runs it through ShellOut#run_command; the stand-in uses system().
      def pre_create_command
        cmd = config[:pre_create_command]
        return unless cmd
        return if system(cmd)

        raise ActionFailed, "pre_create_command '#{cmd}' failed to execute"
      end
    end
  end

  module Transport
    class TransportFailed < TransientFailure
      attr_reader :exit_code

      def initialize(message, exit_code = nil)
        @exit_code = exit_code
        super(message)
      end
    end

    class Base < Kitchen::Plugin::Base
      include Configurable
      include Logging

      def initialize(config = {})
        @connection = nil
        init_config(config)
      end

      def connection(state) # rubocop:disable Lint/UnusedMethodArgument
        raise ClientError, "#{self.class}#connection must be implemented"
      end

      def self.kitchen_transport_api_version(version)
        @api_version = version
      end

      class Connection
        include Logging

        def initialize(options = {})
          init_options(options)
          yield self if block_given?
        end

        def close; end

        def execute(command) # rubocop:disable Lint/UnusedMethodArgument
          raise ClientError, "#{self.class}#execute must be implemented"
        end

        def login_command
          raise ActionFailed, "Remote login not supported in #{self.class}."
        end

        def upload(locals, remote) # rubocop:disable Lint/UnusedMethodArgument
          raise ClientError, "#{self.class}#upload must be implemented"
        end

        def download(remotes, local) # rubocop:disable Lint/UnusedMethodArgument
          raise ClientError, "#{self.class}#download must be implemented"
        end

        def wait_until_ready; end

        private

        attr_reader :logger, :options

        def init_options(options)
          @options = options.dup
          @logger = @options.delete(:logger) || Kitchen.logger
        end
      end
    end
  end
end
