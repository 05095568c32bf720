// The Lua prelude run in every function's fresh Lua state before its code (PRODUCT.md §4 sandbox).
// It receives (log, env), trims the standard library to the allowed surface (only base, coroutine,
// table, string, utf8, math and a reduced `os` are opened at all; see state.ts), routes `print` to
// the function log, refuses binary chunks in `load`, and returns two functions kept in the registry:
//   init(chunk)  runs the compiled top-level chunk; true when it defined a global `handle`
//   call(req)    runs handle(req) and returns (tag, json, raw) or the 'plain' five:
//                'raw', nil, s       handle returned the string s
//                'plain', status, body, headers, size
//                                    handle returned a table with no keys but status (an
//                                    integer), body (a string) and headers (string names to
//                                    string values); headers flattened as {name1, value1, ...}
//                                    sorted by name, size their bytes plus 6 per header (the
//                                    common case, read without any JSON)
//                'json', j, body     j is the JSON of the returned value; when its `body` is a
//                                    string it is left out of j and returned raw as `body`
//                'bad', reason       the value cannot be converted to JSON
// Encoding runs inside the protected call, so it is bounded by the timeout and memory limit.

export const PRELUDE = String.raw`
local log, env = ...
local G = _G
local type, next, select, tostring, rawget, pcall, error, load =
      type, next, select, tostring, rawget, pcall, error, load
local sformat, sbyte, sgsub, ssub, tconcat, tsort, mtype, huge =
      string.format, string.byte, string.gsub, string.sub, table.concat, table.sort, math.type, math.huge

G.dofile, G.loadfile, G.require, G.package, G.io, G.debug = nil, nil, nil, nil, nil, nil

local os_ = G.os
G.os = {
  time = os_.time, clock = os_.clock, date = os_.date, difftime = os_.difftime,
  getenv = function(name)
    if type(name) ~= 'string' then return nil end
    return env[name]
  end,
}

G.load = function(chunk, name, _mode, ...)
  if select('#', ...) > 0 then return load(chunk, name, 't', (...)) end
  return load(chunk, name, 't')
end

G.print = function(...)
  local n = select('#', ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  log(tconcat(parts, '\t'))
end

local BAD = '\0zv-bad\0'
local escapes = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
                  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }
local function esc(c) return escapes[c] or sformat('\\u%04x', sbyte(c)) end
local function quote(s) return '"' .. (sgsub(s, '[%c"\\]', esc)) .. '"' end

local encode
local function encode_table(t, out, depth, seen)
  if seen[t] then error(BAD .. 'a table in the response refers to itself', 0) end
  if depth > 100 then error(BAD .. 'the response tables are nested too deeply', 0) end
  seen[t] = true
  local count, isarray = 0, true
  for k in next, t do
    count = count + 1
    if isarray and (mtype(k) ~= 'integer' or k < 1) then isarray = false end
  end
  if isarray then
    for k in next, t do
      if k > count then isarray = false break end
    end
  end
  if isarray and count > 0 then
    out[#out + 1] = '['
    for i = 1, count do
      if i > 1 then out[#out + 1] = ',' end
      encode(rawget(t, i), out, depth + 1, seen)
    end
    out[#out + 1] = ']'
  else
    local keys, map = {}, {}
    for k, v in next, t do
      local tk = type(k)
      local sk
      if tk == 'string' then sk = k
      elseif tk == 'number' or tk == 'boolean' then sk = tostring(k)
      else error(BAD .. 'a table in the response has a ' .. tk .. ' key', 0) end
      if map[sk] == nil then keys[#keys + 1] = sk end
      map[sk] = v
    end
    tsort(keys)
    out[#out + 1] = '{'
    for i = 1, #keys do
      local k = keys[i]
      if i > 1 then out[#out + 1] = ',' end
      out[#out + 1] = quote(k)
      out[#out + 1] = ':'
      encode(map[k], out, depth + 1, seen)
    end
    out[#out + 1] = '}'
  end
  seen[t] = nil
end

encode = function(v, out, depth, seen)
  local tv = type(v)
  if tv == 'string' then out[#out + 1] = quote(v)
  elseif tv == 'number' then
    if mtype(v) == 'integer' then out[#out + 1] = sformat('%d', v)
    elseif v ~= v or v == huge or v == -huge then out[#out + 1] = 'null'
    else out[#out + 1] = sformat('%.17g', v) end
  elseif tv == 'boolean' then out[#out + 1] = v and 'true' or 'false'
  elseif tv == 'nil' then out[#out + 1] = 'null'
  elseif tv == 'table' then encode_table(v, out, depth, seen)
  else error(BAD .. 'a ' .. tv .. ' cannot be sent in a response', 0) end
end

local function to_json(v)
  local out = {}
  encode(v, out, 0, {})
  return tconcat(out)
end

-- the 'plain' shape of a response (see call), or nil
local function plain(r)
  local status, body, headers
  for k, v in next, r do
    if k == 'status' then
      if mtype(v) ~= 'integer' then return nil end
      status = v
    elseif k == 'body' then
      if type(v) ~= 'string' then return nil end
      body = v
    elseif k == 'headers' then
      if type(v) ~= 'table' then return nil end
      headers = v
    else
      return nil
    end
  end
  local flat, size = nil, 0
  if headers then
    local keys, n = {}, 0
    for hk, hv in next, headers do
      if type(hk) ~= 'string' or type(hv) ~= 'string' then return nil end
      n = n + 1
      keys[n] = hk
    end
    if n > 1 then tsort(keys) end
    flat = {}
    for i = 1, n do
      local hk = keys[i]
      local hv = rawget(headers, hk)
      flat[2 * i - 1], flat[2 * i] = hk, hv
      size = size + #hk + #hv + 6
    end
  end
  return status, body, flat, size
end

local function init(chunk)
  chunk()
  return type(rawget(G, 'handle')) == 'function'
end

local function call(req)
  local handle = rawget(G, 'handle')
  if type(handle) ~= 'function' then error('the global function handle(req) is gone', 0) end
  local r = handle(req)
  if type(r) == 'string' then return 'raw', nil, r end
  if type(r) == 'table' then
    local status, pbody, flat, size = plain(r)
    if size then return 'plain', status, pbody, flat, size end
  end
  local body
  if type(r) == 'table' and type(rawget(r, 'body')) == 'string' then
    body = rawget(r, 'body')
    local copy = {}
    for k, v in next, r do
      if k ~= 'body' then copy[k] = v end
    end
    r = copy
  end
  local ok, json = pcall(to_json, r)
  if ok then return 'json', json, body end
  if type(json) == 'string' and ssub(json, 1, #BAD) == BAD then return 'bad', ssub(json, #BAD + 1) end
  error(json, 0)
end

return init, call
`;
