# Runs test-kitchen's own loader and DataMunger (from $TEST_KITCHEN_SRC/lib) on the project in the cwd.
$LOAD_PATH.unshift File.join(ENV.fetch("TEST_KITCHEN_SRC"), "lib"), File.join(__dir__, "stub")
require "json"
require "kitchen/errors"
require "kitchen/util"
require "kitchen/loader/yaml"
require "kitchen/data_munger"
require "kitchen/platform_filter"
require "kitchen/suite"
require "kitchen/platform"
def canon(x)
  case x
  when Hash then x.each_with_object({}) { |(k, v), h| h[k.to_s] = canon(v) }
  when Array then x.map { |e| canon(e) }
  when Symbol then ":#{x}"
  when Float then x.finite? ? x : x.to_s
  else x
  end
end
begin
  loader = Kitchen::Loader::YAML.new(
    project_config: ENV["KITCHEN_YAML"] || ENV["KITCHEN_YML"],
    local_config: ENV["KITCHEN_LOCAL_YAML"] || ENV["KITCHEN_LOCAL_YML"],
    global_config: ENV["KITCHEN_GLOBAL_YAML"] || ENV["KITCHEN_GLOBAL_YML"]
  )
  kc = { defaults: { driver: "dummy", provisioner: "shell", verifier: "busser",
                     transport: lambda { |_s, p| /^win/i.match?(p) ? "winrm" : "ssh" } },
         kitchen_root: Dir.pwd, test_base_path: File.join(Dir.pwd, "test/integration"),
         log_level: "info", log_overwrite: true, debug: false }
  data = Kitchen::DataMunger.new(loader.read, kc)
  platforms = data.platform_data.map { |p| Kitchen::Platform.new(p) }
  suites = data.suite_data.map { |s| Kitchen::Suite.new(s) }
  out = {}
  order = []
  suites.product(platforms).select do |s, p|
    if !s.includes.empty? then s.includes.include?(p.name)
    elsif !s.excludes.empty? then !s.excludes.include?(p.name)
    else true end
  end.each do |s, p|
    name = "#{s.name}-#{p.name}".gsub(%r{[_,/]}, "-").delete(".")
    order << name
    out[name] = canon({ driver: data.driver_data_for(s.name, p.name),
                  provisioner: data.provisioner_data_for(s.name, p.name),
                  verifier: data.verifier_data_for(s.name, p.name),
                  transport: data.transport_data_for(s.name, p.name),
                  lifecycle: data.lifecycle_hooks_data_for(s.name, p.name) })
  end
  puts JSON.generate({ "order" => order, "instances" => out })
rescue Exception => e
  puts JSON.generate({ "error" => "#{e.class}: #{e.message}" })
end
