-- spamgate.lua - the milter protocol suite run by miltertest (OpenDKIM's
-- MTA-side implementation of the protocol, an independent one) against a
-- running `spamgate milter`. Globals (-D): SOCK (inet:PORT@127.0.0.1), HAM,
-- SPAM, EICAR (message files), LOGIN (an account over its hourly limit after
-- one message, whose holds go to the hold queue). Each case fails with
-- error(): miltertest exits non-zero.

mt.set_timeout(60)

local function check(ok, what)
  if not ok then
    mt.echo("FAILED - " .. what)  -- (miltertest does not always print the error)
    error("FAILED: " .. what)
  end
  mt.echo("ok - " .. what)
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- Splits a message file into unfolded header fields and the body.
local function parse(path)
  local s = read(path):gsub("\r\n", "\n")
  local head, body = s:match("^(.-)\n\n(.*)$")
  local fields = {}
  for line in (head .. "\n"):gmatch("(.-)\n") do
    if line:match("^[ \t]") and #fields > 0 then
      fields[#fields].value = fields[#fields].value .. "\r\n" .. line
    else
      -- with SMFIP_HDR_LEADSPC the value keeps its leading space
      local name, value = line:match("^([^:]+):(.*)$")
      if name then table.insert(fields, {name = name, value = value}) end
    end
  end
  return fields, body:gsub("\n", "\r\n")
end

local function connect()
  local conn = mt.connect(SOCK, 40, 0.25)
  if conn == nil then error("cannot connect to " .. SOCK) end
  check(mt.negotiate(conn, nil, nil, nil) == nil, "negotiate")
  return conn
end

local function envelope(conn, ip, login)
  check(mt.conninfo(conn, "client.example", ip) == nil, "connect from " .. ip)
  check(mt.getreply(conn) == SMFIR_CONTINUE, "connect answered continue")
  check(mt.helo(conn, "client.example") == nil, "helo")
end

-- One message through MAIL .. EOM; returns after EOM.
local function message(conn, path, login)
  if login then mt.macro(conn, SMFIC_MAIL, "{auth_authen}", login, "i", "MT" .. math.random(100000)) end
  check(mt.mailfrom(conn, "<sender@outside.example>") == nil, "mail from")
  check(mt.getreply(conn) == SMFIR_CONTINUE, "mail from answered continue")
  check(mt.rcptto(conn, "<user@example.net>") == nil, "rcpt to")
  local fields, body = parse(path)
  for _, f in ipairs(fields) do
    check(mt.header(conn, f.name, f.value) == nil, "header " .. f.name)
  end
  check(mt.eoh(conn) == nil, "end of headers")
  check(mt.bodystring(conn, body) == nil, "body")
  check(mt.eom(conn) == nil, "end of message")
end

-- 1. Negotiation: the actions and steps spamgate asks for.
local conn = connect()
check(mt.test_action(conn, SMFIF_ADDHDRS), "asks to add headers")
check(mt.test_action(conn, SMFIF_CHGHDRS), "asks to change headers")
check(mt.test_action(conn, SMFIF_QUARANTINE), "asks to quarantine")
check(not mt.test_action(conn, SMFIF_CHGBODY), "does not ask to change the body")
check(mt.test_option(conn, SMFIP_NR_HDR), "no reply to each header")
check(mt.test_option(conn, SMFIP_SKIP), "takes SKIP")
check(mt.test_option(conn, SMFIP_HDR_LEADSPC), "asks for headers with their leading space")

-- 2. Ham, then spam, then malware, then an aborted message, on one connection.
envelope(conn, "192.0.2.10")
message(conn, HAM)
check(mt.getreply(conn) == SMFIR_CONTINUE, "ham: accepted")
check(mt.eom_check(conn, MT_HDRINSERT, "X-Spam-Technical-Details") or
      mt.eom_check(conn, MT_HDRADD, "X-Spam-Technical-Details"), "ham: X-Spam-Technical-Details added")
check(not mt.eom_check(conn, MT_HDRCHANGE, "Subject"), "ham: Subject unchanged")

message(conn, SPAM)
check(mt.getreply(conn) == SMFIR_CONTINUE, "spam: accepted (tagged)")
check(mt.eom_check(conn, MT_HDRCHANGE, "Subject"), "spam: Subject changed")
local subject = nil
for _, f in ipairs((parse(SPAM))) do if f.name == "Subject" then subject = f.value end end
check(mt.eom_check(conn, MT_HDRCHANGE, "Subject", " [SPAM] - " .. subject:gsub("^ ", "")),
      "spam: Subject is [SPAM] - <subject> (its leading space kept)")

message(conn, EICAR)
check(mt.getreply(conn) == SMFIR_REPLYCODE, "malware: a reply code")
check(mt.eom_check(conn, MT_SMTPREPLY, "550", "5.7.1",
                   "Your email was rejected because it contains the Spamgate.Test.EICAR"), "malware: 550 5.7.1 with the signature")

check(mt.mailfrom(conn, "<a@outside.example>") == nil, "abort: mail from")
check(mt.header(conn, "Subject", " never finished") == nil, "abort: a header")
check(mt.abort(conn) == nil, "abort mid-message")
message(conn, HAM)
check(mt.getreply(conn) == SMFIR_CONTINUE, "after an abort the next message is scanned")
check(mt.eom_check(conn, MT_HDRINSERT, "X-Spam-Technical-Details") or
      mt.eom_check(conn, MT_HDRADD, "X-Spam-Technical-Details"), "after an abort: headers added")
mt.disconnect(conn)

-- (What an MTA that offers fewer actions or steps gets is tested in
-- tests/unit/milter_protocol_test.cc: this miltertest offers its defaults
-- whatever mt.negotiate is given.)

-- 3. Quarantine: an authenticated account over its limit is held in the hold queue.
conn = connect()
envelope(conn, "192.0.2.13")
message(conn, HAM, LOGIN)
check(not mt.eom_check(conn, MT_QUARANTINE), "quarantine: the first message passes")
message(conn, HAM, LOGIN)
check(mt.eom_check(conn, MT_QUARANTINE), "quarantine: the message over the limit is quarantined")
mt.disconnect(conn)

mt.echo("miltertest: all cases passed")
