// The Python program each worker process runs (passed with `python -c`, so nothing has to be
// copied next to the compiled JS). Protocol: one JSON object per line, host → worker on fd 3,
// worker → host on fd 4; fd 1/2 belong to the user's code and go to the function log.
// Host sends {t:'load', code, filename, lineOffset, memoryMb, env, seccomp} first, then
// {t:'invoke', req} one at a time. Worker answers ready | compile_error | fatal, then per
// invocation result (with `bytes` naming a base64 field) | error | memory | bad_response |
// too_large (the response is over `maxResponse` bytes, --max-response: it never leaves the worker).
// A module in the original Zerverless style (top-level `result = handle(INPUT)`, or no handle and
// a top-level `result` / printed JSON) is compiled once and run again per invocation with INPUT
// set to the request; its `result`, else the one JSON document it printed, is the answer.
// Keep this free of backticks and dollar-brace: it lives in a template literal.

/** The worker's exit code when a MemoryError escaped everything (kept in sync with the last line). */
export const WORKER_EXIT_MEMORY = 86;

/** What the worker and the check zygote share: the protocol helpers, the sandbox set-up, `_load`. */
const LIB = String.raw`
import os, sys, json, traceback, linecache, resource, types, ctypes, struct, base64

IN_FD, OUT_FD = 3, 4
_reserve = bytearray(2 * 1024 * 1024)
_max_response = 10 * 1024 * 1024
_MAX_MESSAGE = 16 * 1024
# Bound once (json.dumps builds an encoder per call; user code rebinding json.* cannot reach these).
_encode = json.JSONEncoder(separators=(',', ':')).encode
_encode_text = json.JSONEncoder(separators=(',', ':'), ensure_ascii=False).encode
_decode = json.JSONDecoder().decode
# Results that are never awaitable: no further check on the hot path.
_PLAIN = (str, dict, list, tuple, bytes, bytearray, int, float, bool, type(None))
_the_loop = None


def _loop():
    # asyncio (and the ssl it imports) is about a third of a worker's start: imported only for a
    # module that mentions async or asyncio (before its import, as always) or on the first
    # awaitable a handler returns. A loop the module's imports already set is the one used.
    global _the_loop
    if _the_loop is None:
        import asyncio, warnings
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', DeprecationWarning)
                _the_loop = asyncio.get_event_loop_policy().get_event_loop()
        except RuntimeError:
            _the_loop = None
        if _the_loop is None or _the_loop.is_closed():
            _the_loop = asyncio.new_event_loop()
            asyncio.set_event_loop(_the_loop)
    return _the_loop


def _isawaitable(o):
    # inspect.isawaitable without importing inspect
    return (isinstance(o, types.CoroutineType) or hasattr(type(o), '__await__')
            or (isinstance(o, types.GeneratorType) and bool(o.gi_code.co_flags & 0x100)))


def _wants_asyncio(code):
    return 'async' in code


class _TooLarge(Exception):
    def __init__(self, size):
        Exception.__init__(self)
        self.size = size


def _write_line(text):
    view = memoryview((text + '\n').encode('utf-8'))
    while view:
        view = view[os.write(OUT_FD, view):]


def _send(obj):
    _write_line(_encode(obj))


class _Reader:
    def __init__(self, fd):
        # One read buffer for the worker's life: no 1 MiB allocation (an mmap) per read.
        self.fd, self.buf, self.chunk = fd, bytearray(), bytearray(1 << 20)

    def line(self):
        seen = 0  # bytes of buf already searched: a big message is not searched again per read
        while True:
            i = self.buf.find(b'\n', seen)
            if i >= 0:
                out = self.buf[:i].decode('utf-8')
                del self.buf[:i + 1]
                return _decode(out)
            seen = len(self.buf)
            n = os.readv(self.fd, [self.chunk])
            if not n:
                return None
            self.buf += memoryview(self.chunk)[:n]


def _seccomp(libc):
    # Classic BPF: execve/execveat/fork/vfork, ptrace and process_vm_readv/writev -> EPERM (no
    # reading or writing another process, e.g. the check zygote), clone without CLONE_THREAD -> EPERM,
    # clone3 -> ENOSYS (glibc then falls back to clone); other arch or the x32 ABI -> kill.
    machine = os.uname().machine
    if machine == 'x86_64':
        arch, deny, clone, clone3, x32 = 0xC000003E, (57, 58, 59, 322, 101, 310, 311), 56, 435, True
    elif machine == 'aarch64':
        arch, deny, clone, clone3, x32 = 0xC00000B7, (221, 281, 117, 270, 271), 220, 435, False
    else:
        raise OSError('no seccomp filter for architecture ' + machine)
    LD_ABS, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
    ALLOW, KILL = 0x7FFF0000, 0x80000000
    EPERM, ENOSYS = 0x00050000 | 1, 0x00050000 | 38
    prog = [(LD_ABS, 0, 0, 4), (JEQ, 1, 0, arch), (RET, 0, 0, KILL), (LD_ABS, 0, 0, 0)]
    if x32:
        prog += [(JGE, 0, 1, 0x40000000), (RET, 0, 0, KILL)]
    for nr in deny:
        prog += [(JEQ, 0, 1, nr), (RET, 0, 0, EPERM)]
    prog += [(JEQ, 0, 1, clone3), (RET, 0, 0, ENOSYS)]
    # clone: args[0] (flags) low word is at offset 16 on little-endian x86_64 / aarch64
    prog += [(JEQ, 0, 3, clone), (LD_ABS, 0, 0, 16), (JSET, 1, 0, 0x00010000), (RET, 0, 0, EPERM)]
    prog += [(RET, 0, 0, ALLOW)]
    raw = b''.join(struct.pack('=HBBI', *ins) for ins in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))

    class FProg(ctypes.Structure):
        _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_void_p)]

    fprog = FProg(len(prog), ctypes.addressof(buf))
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), 'prctl(PR_SET_NO_NEW_PRIVS) failed')
    if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise OSError(ctypes.get_errno(), 'prctl(PR_SET_SECCOMP) failed')


def _limit_memory(memory_mb):
    # RLIMIT_AS counts address space: the interpreter's current size is the baseline, plus headroom
    # for a few thread stacks (8 MiB of address space each, little of it ever touched).
    size = 64 * 1024 * 1024
    try:
        with open('/proc/self/status') as f:
            for ln in f:
                if ln.startswith('VmSize:'):
                    size = int(ln.split()[1]) * 1024
    except OSError:
        pass
    limit = size + (memory_mb + 48) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _describe(e):
    msg = str(e)
    if len(msg) > _MAX_MESSAGE:
        msg = msg[:_MAX_MESSAGE] + ' ...[%d more characters]' % (len(msg) - _MAX_MESSAGE)
    return type(e).__name__ + (': ' + msg if msg else '')


def _print_user_traceback(e):
    # Skip the worker's own frames (python -c names them <string>): the log shows the user's code only.
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == '<string>':
        tb = tb.tb_next
    traceback.print_exception(type(e), e, tb)


def _load(msg):
    filename = msg['filename']
    offset = max(int(msg.get('lineOffset') or 1), 1)
    code = '\n' * (offset - 1) + msg['code']
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    try:
        compiled = compile(code, filename, 'exec', dont_inherit=True)
    except SyntaxError as e:
        return None, '%s:%s: %s' % (filename, e.lineno or offset, e.msg)
    except (ValueError, TypeError) as e:
        return None, '%s: %s' % (filename, _describe(e))
    if _is_legacy(compiled):
        # The original Zerverless style: the module itself computes the answer from INPUT, so it
        # is run again for every call (_Legacy), never at load time (there is no request yet).
        return _Legacy(compiled, filename), None
    mod = types.ModuleType('handler')
    mod.__file__ = filename
    mod.INPUT = None
    sys.modules['handler'] = mod
    try:
        exec(compiled, mod.__dict__)
    except MemoryError:
        raise
    except BaseException as e:
        _print_user_traceback(e)
        line = None
        for frame in traceback.extract_tb(e.__traceback__):
            if frame.filename == filename:
                line = frame.lineno
        where = '%s:%s' % (filename, line) if line else filename
        return None, '%s: %s' % (where, _describe(e))
    handle = mod.__dict__.get('handle')
    if handle is None:
        return None, '%s: no handle(req) function is defined' % filename
    if not callable(handle):
        return None, '%s: handle is not callable' % filename

    def call(req):
        mod.INPUT = req  # a handle written against the INPUT global sees the current request
        return handle(req)
    return call, None


def _is_legacy(compiled):
    # A module written for the original Zerverless ends with result = handle(INPUT) and/or prints
    # json.dumps(result): its top-level code reads INPUT, or it defines no handle and sets result
    # or prints. co_names of the module code object lists the names its top-level code uses.
    names = set(compiled.co_names)
    if 'INPUT' in names:
        return True
    return 'handle' not in names and ('result' in names or 'print' in names)


class _Tee:
    # sys.stdout while a legacy module runs: everything still goes to the function log, and up to
    # the response cap is kept to read the one JSON document the module printed as its answer.
    def __init__(self, stream, cap):
        self.stream, self.cap, self.parts, self.size, self.over = stream, cap, [], 0, False

    def write(self, s):
        n = self.stream.write(s)
        if not self.over and isinstance(s, str):
            self.size += str.__len__(s)
            if self.size > self.cap:
                self.over, self.parts = True, []
            else:
                self.parts.append(s)
        return n

    def text(self):
        return None if self.over else ''.join(self.parts)

    def __getattr__(self, name):
        return getattr(self.stream, name)


_NO_ANSWER = object()


class _Legacy:
    def __init__(self, compiled, filename):
        self.compiled, self.filename = compiled, filename

    def __call__(self, req):
        mod = types.ModuleType('handler')
        mod.__file__ = self.filename
        mod.INPUT = req
        sys.modules['handler'] = mod
        real = sys.stdout
        tee = _Tee(real, _max_response + 1024)
        sys.stdout = tee
        try:
            exec(self.compiled, mod.__dict__)
        finally:
            sys.stdout = real
        if 'result' in mod.__dict__:
            return mod.__dict__['result']
        printed = tee.text()
        answer = _NO_ANSWER
        if printed is not None and printed.strip():
            try:
                answer = json.loads(printed)
            except ValueError:
                pass
        if answer is _NO_ANSWER:
            raise RuntimeError('%s: the module set no top-level result and printed no single JSON document' % self.filename)
        return answer


def _text_size(s):
    # UTF-8 takes at least one byte per code point: refuse by length before encoding anything
    n = str.__len__(s)
    if n > _max_response:
        raise _TooLarge(n)
    return len(str.encode(s, 'utf-8', 'surrogatepass'))


def _body_size(b):
    if b is None:
        return 0
    if isinstance(b, str):
        return _text_size(b)
    if isinstance(b, (bytes, bytearray, memoryview)):
        return memoryview(b).nbytes
    if isinstance(b, (bool, int, float)):
        return 0
    try:
        return _text_size(_encode_text(b))
    except (TypeError, ValueError):
        return 0  # _result_line answers bad_response


def _response_size(result):
    # --max-response: the body (a dict or list body as JSON) plus the header names and values; a
    # dict with none of status, headers, body is data sent as JSON (normalizeResult on the server)
    if not isinstance(result, dict) or not any(k in result for k in ('status', 'headers', 'body')):
        return _body_size(result)
    size = 0
    headers = result.get('headers')
    if isinstance(headers, dict):
        for k, v in headers.items():
            size += _text_size(str(k)) + _text_size(str(v))
            if size > _max_response:
                raise _TooLarge(size)
    return size + _body_size(result.get('body'))


def _result_line(result):
    try:
        size = _response_size(result)
    except _TooLarge as e:
        size = e.size
    except Exception:
        size = 0  # not measurable: json.dumps below decides (bad_response)
    if size > _max_response:
        return json.dumps({'t': 'too_large', 'size': size})
    reply = {'t': 'result', 'value': result}
    if isinstance(result, (bytes, bytearray, memoryview)):
        reply = {'t': 'result', 'value': base64.b64encode(bytes(result)).decode('ascii'), 'bytes': 'value'}
    elif isinstance(result, dict) and isinstance(result.get('body'), (bytes, bytearray, memoryview)):
        value = dict(result)
        value['body'] = base64.b64encode(bytes(value['body'])).decode('ascii')
        reply = {'t': 'result', 'value': value, 'bytes': 'body'}
    try:
        return _encode(reply)
    except (TypeError, ValueError) as e:
        return json.dumps({'t': 'bad_response', 'message': 'handle returned a value that cannot be sent: %s' % _describe(e)})


def _serve(handle, reader):
    global _reserve
    while True:
        msg = reader.line()
        if msg is None:
            return
        try:
            result = handle(msg['req'])
            if type(result) not in _PLAIN and _isawaitable(result):
                result = _loop().run_until_complete(result)
            line = _result_line(result)
        except MemoryError:
            _reserve = None
            line = '{"t":"memory","message":"MemoryError"}'
        except BaseException as e:
            try:
                _print_user_traceback(e)
            except MemoryError:
                pass
            line = json.dumps({'t': 'error', 'message': _describe(e)})
        result = None
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        _write_line(line)


def main():
    global _reserve, _max_response
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG: SIGKILL when the host dies
    sys.stdout.reconfigure(line_buffering=True, errors='backslashreplace')
    sys.stderr.reconfigure(line_buffering=True, errors='backslashreplace')
    reader = _Reader(IN_FD)
    msg = reader.line()
    if msg is None:
        return
    if _wants_asyncio(msg['code']):
        _loop()
    os.environ.clear()
    os.environ.update(msg.get('env') or {})
    if msg.get('maxResponse'):
        _max_response = int(msg['maxResponse'])
    try:
        if msg.get('seccomp'):
            _seccomp(libc)
        if msg.get('memoryMb'):
            _limit_memory(int(msg['memoryMb']))
    except Exception as e:
        _send({'t': 'fatal', 'message': 'cannot set up the python sandbox: ' + _describe(e)})
        return
    try:
        handle, error = _load(msg)
    except MemoryError:
        _reserve = None
        _send({'t': 'compile_error', 'memory': True,
               'message': '%s: MemoryError while loading the module' % msg['filename']})
        return
    if error:
        _send({'t': 'compile_error', 'message': error})
        return
    _send({'t': 'ready'})
    _serve(handle, reader)
`;

export const WORKER_SOURCE = LIB + String.raw`

try:
    main()
except MemoryError:
    os._exit(86)
`;

/**
 * The check zygote (runtime.ts compile, what a sync runs): one per namespace, sandboxed like a
 * worker, it runs only this code. Per check it reads a fixed 32-byte header (id, payload size and
 * time allowed, in decimal digits) and the payload (the load message, never parsed here), forks a
 * child that sets up the worker sandbox (seccomp, memory limit, env), imports the module exactly as
 * a worker does and writes one reply line, then wipes the payload, the reply and /tmp before the
 * next fork: no code, env or output of one function is left in the zygote's memory or /tmp for the
 * next. One check at a time; what the child prints goes to memory files of its own and comes back
 * in its reply (the host logs it to that function). PR_SET_DUMPABLE 0 and the child's seccomp filter (no ptrace, no
 * process_vm_*) keep a child from reading or changing the zygote.
 */
export const CHECKER_SOURCE = LIB + String.raw`
import select, signal, time
import asyncio  # imported once here, not in every check's child

_MAX_CHECK_REPLY = 4 << 20
# What a module printed while imported comes back in the reply (at most this much per stream).
_MAX_CAPTURE = 256 * 1024


def _captured(fd):
    size = os.lseek(fd, 0, os.SEEK_END)
    n = min(size, _MAX_CAPTURE)
    text = os.pread(fd, n, 0).decode('utf-8', 'backslashreplace')
    if size > n:
        text += '\n...[%d more bytes not logged]' % (size - n)
    return text


def _read_exact(fd, view):
    got = 0
    while got < len(view):
        n = os.readv(fd, [view[got:]])
        if not n:
            return False
        got += n
    return True


def _wipe(buf):
    if len(buf):
        ctypes.memset((ctypes.c_char * len(buf)).from_buffer(buf), 0, len(buf))


def _clear_dir(d):
    for e in os.scandir(d):
        try:
            if e.is_dir(follow_symlinks=False):
                os.chmod(e.path, 0o700)
                _clear_dir(e.path)
                os.rmdir(e.path)
            else:
                os.unlink(e.path)
        except OSError:
            pass


def _check_child(payload, res_w, libc):
    global _max_response, _reserve
    code = 0
    try:
        os.close(IN_FD)
        os.close(OUT_FD)
        libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG: SIGKILL when the zygote dies
        # stdout/stderr into memory files of this child alone, sent back in the reply: nothing of
        # it can reach the zygote or be logged under the next check's function.
        out_fd, err_fd = os.memfd_create('stdout'), os.memfd_create('stderr')
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        msg = _decode(payload.decode('utf-8'))
        os.environ.clear()
        os.environ.update(msg.get('env') or {})
        if msg.get('maxResponse'):
            _max_response = int(msg['maxResponse'])
        _loop()
        try:
            if msg.get('seccomp'):
                _seccomp(libc)
            if msg.get('memoryMb'):
                _limit_memory(int(msg['memoryMb']))
                # a file (the captured output, one in /tmp) as big as the worker's /tmp at most
                limit = max(1, int(msg['memoryMb'])) * 1024 * 1024
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        except Exception as e:
            reply = {'t': 'fatal', 'message': 'cannot set up the python sandbox: ' + _describe(e)}
        else:
            try:
                handle, error = _load(msg)
                reply = {'t': 'compile_error', 'message': error} if error else {'t': 'ready'}
            except MemoryError:
                _reserve = None
                reply = {'t': 'compile_error', 'memory': True,
                         'message': '%s: MemoryError while loading the module' % msg['filename']}
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        reply['id'] = msg['id']
        reply['stdout'], reply['stderr'] = _captured(out_fd), _captured(err_fd)
        view = memoryview((_encode(reply) + '\n').encode('utf-8'))
        while view:
            view = view[os.write(res_w, view):]
    except MemoryError:
        code = 86
    except BaseException:
        code = 1
    os._exit(code)


def _collect(r, pid, timeout_ms, buf):
    # The child's reply line into buf (no other copy); None when it ended without one or sent too
    # much, 'timeout' when it did not finish in time (killed).
    got = 0
    deadline = time.monotonic() + timeout_ms / 1000.0
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([r], [], [], left)[0]:
            os.kill(pid, signal.SIGKILL)
            return 'timeout'
        n = os.readv(r, [memoryview(buf)[got:]])
        if not n:
            break
        got += n
        if got >= len(buf):
            os.kill(pid, signal.SIGKILL)
            return None
    end = buf.find(b'\n', 0, got)
    return None if end < 0 else end + 1


def checker():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG: SIGKILL when the host dies
    libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: no child can ptrace it or open its memory
    sys.stdout.reconfigure(line_buffering=True, errors='backslashreplace')
    sys.stderr.reconfigure(line_buffering=True, errors='backslashreplace')
    head = bytearray(32)
    buf = bytearray(_MAX_CHECK_REPLY)
    while True:
        if not _read_exact(IN_FD, memoryview(head)):
            return
        cid, size, timeout_ms = int(head[0:12]), int(head[12:24]), int(head[24:32])
        payload = bytearray(size)
        if not _read_exact(IN_FD, memoryview(payload)):
            return
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            _check_child(payload, w, libc)
        os.close(w)
        _wipe(payload)
        del payload
        end = _collect(r, pid, timeout_ms, buf)
        os.close(r)
        _, status = os.waitpid(pid, 0)
        _clear_dir('/tmp')
        if isinstance(end, int):
            out = memoryview(buf)[:end]
        else:
            t = 'timeout' if end == 'timeout' else 'died'
            code = os.waitstatus_to_exitcode(status) if hasattr(os, 'waitstatus_to_exitcode') else status
            out = memoryview(('{"id":%d,"t":"%s","code":%d}\n' % (cid, t, code)).encode('ascii'))
        while out:
            out = out[os.write(OUT_FD, out):]
        _wipe(buf)


checker()
`;
