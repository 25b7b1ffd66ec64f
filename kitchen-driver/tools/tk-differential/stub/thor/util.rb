class Thor; module Util; def self.camel_case(s); s; end; end; end
