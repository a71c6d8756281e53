-- POST the bytes of a file with extra headers (wrk ... -s body_file.lua URL -- FILE "Name: value"...),
-- for bodies wrk cannot build itself (gzip'd, sealed).
wrk.method = "POST"

function init(args)
   local f = assert(io.open(args[1], "rb"))
   wrk.body = f:read("*a")
   f:close()
   for i = 2, #args do
      local name, value = args[i]:match("^([^:]+):%s*(.*)$")
      wrk.headers[name] = value
   end
end
