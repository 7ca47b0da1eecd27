-- Replays pre-generated raw HTTP requests, each exactly once, then ends wrk.
--
-- Run by bench/ingest_throughput.py as:
--   wrk -t1 -cC -dCAP --timeout 60s -s wrk_replay.lua http://127.0.0.1:PORT/ -- FILE COUNT
-- FILE holds COUNT records, each "<byte length>\n<raw HTTP/1.1 request>".
--
-- Three wrk details this script works around (wrk 4.x, Debian's 4.1.0):
-- * wrk calls request() once on the main thread, right after init(), only to check that it
--   parses (script_verify_request); that request is never sent. The call is recognised by its
--   thread (pthread_self) and answered with the first request without consuming it, or that
--   receipt would never be sent.
-- * wrk's main thread sleeps for the whole -d duration whatever its threads do, and its
--   summary duration is that sleep. The last response therefore sends SIGINT to wrk (its
--   handler ends the sleep), and the run's duration is measured here with CLOCK_MONOTONIC, from
--   the first request written to the last response read.
-- * Once every request is sent, request() returns "": a connection wrk reopens (gunicorn's sync
--   workers close after each response) then sends nothing. It is queued in the accept queue
--   behind every connection that carries a request, so the workers answer all real requests
--   first; wrk closes the idle ones when it exits. One wrk thread only (-t1): with several,
--   one thread's idle connections could sit ahead of another's requests and block a sync
--   worker. One thread does far more than the server under test.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
unsigned long pthread_self(void);
int kill(int pid, int sig);
int getpid(void);
]])
local CLOCK_MONOTONIC, SIGINT = 1, 2
local timespec = ffi.new("bench_timespec")

local function now()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
    return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) / 1e9
end

local requests = {}
local total = 0
local sent = 0
local init_thread = nil
-- Globals: read from done() through thread:get().
completed = 0
non2xx = 0
statuses = {}
first_sent = 0
last_received = 0

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    init_thread = ffi.C.pthread_self()
    local path, expected = args[1], tonumber(args[2])
    local file = assert(io.open(path, "rb"))
    local data = file:read("*a")
    file:close()
    local pos = 1
    while pos <= #data do
        local newline = string.find(data, "\n", pos, true)
        local length = tonumber(string.sub(data, pos, newline - 1))
        total = total + 1
        requests[total] = string.sub(data, newline + 1, newline + length)
        pos = newline + length + 1
    end
    assert(total == expected, string.format("read %d requests from %s, expected %d", total, path, expected))
end

function request()
    if ffi.C.pthread_self() == init_thread then
        return requests[1] -- wrk's parse check on the main thread: not sent
    end
    if sent >= total then
        return ""
    end
    if sent == 0 then
        first_sent = now()
    end
    sent = sent + 1
    return requests[sent]
end

function response(status, headers, body)
    completed = completed + 1
    statuses[status] = (statuses[status] or 0) + 1
    if status < 200 or status > 299 then
        non2xx = non2xx + 1
    end
    if completed == total then
        last_received = now()
        wrk.thread:stop()
        ffi.C.kill(ffi.C.getpid(), SIGINT)
    end
end

function done(summary, latency, requests_stats)
    local done_count, bad, started, finished = 0, 0, math.huge, 0
    local codes = {}
    for _, thread in ipairs(threads) do
        done_count = done_count + thread:get("completed")
        bad = bad + thread:get("non2xx")
        started = math.min(started, thread:get("first_sent"))
        finished = math.max(finished, thread:get("last_received"))
        for code, count in pairs(thread:get("statuses")) do
            table.insert(codes, string.format("%s:%d", code, count))
        end
    end
    local duration_us = summary.duration
    if finished > 0 then
        duration_us = (finished - started) * 1e6
    end
    local errors = summary.errors
    io.write(string.format(
        "BENCH_RESULT duration_us=%d completed=%d non2xx=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f"
            .. " connect_errors=%d read_errors=%d write_errors=%d timeouts=%d finished=%s statuses=%s\n",
        duration_us, done_count, bad,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
        errors.connect, errors.read, errors.write, errors.timeout, tostring(finished > 0), table.concat(codes, ",")
    ))
end
