"""A scripted peer of the coordinator's agent socket, for the e2e tests: a real ZeroMQ
DEALER with CURVE (pyzmq), speaking the wire protocol ([1, "TYPE", {body}] in msgpack) with
whatever key and messages a test wants, including ones a real agent would never send.

Keys come from files the agent writes or from tests/tools/anvil-testtool (token enrollment
keys, proofs), so the peer uses exactly Anvil's key derivation.
"""
import os
import subprocess
import time

import msgpack
import zmq

BUILD = os.environ.get("ANVIL_BUILD_DIR") or os.path.join(os.path.dirname(__file__), "../../build")
TOOL = os.path.join(BUILD, "tests", "anvil-testtool")


def tool(*args, stdin=None):
    r = subprocess.run([TOOL, *args], input=stdin, capture_output=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"anvil-testtool {args[0]}: {r.stderr.decode().strip()}")
    return r.stdout.decode().strip()


def enroll_keypair(token):
    pub, sec = tool("enroll-key", token).split()
    return pub, sec


def keypair_of(keyfile):
    pub, sec = tool("keypair", keyfile).split()
    return pub, sec


def proof(keyfile, server_key, context):
    return tool("proof", keyfile, server_key, context)


def new_keyfile(path):
    """Writes a fresh key pair in Anvil's key file format."""
    pub, sec = zmq.curve_keypair()
    with open(path, "w") as f:
        f.write(f'public-key: "{pub.decode()}"\nsecret-key: "{sec.decode()}"\n')
    os.chmod(path, 0o600)
    return pub.decode(), sec.decode()


class Peer:
    def __init__(self, endpoint, server_key, public, secret):
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.curve_serverkey = server_key.encode()
        self.sock.curve_publickey = public.encode()
        self.sock.curve_secretkey = secret.encode()
        self.mon = self.sock.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
            | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
            | zmq.EVENT_DISCONNECTED)
        self.events = []
        self.sock.connect(endpoint)

    def poll_events(self, timeout=0.0):
        end = time.time() + timeout
        while True:
            left = max(0, end - time.time())
            if self.mon.poll(int(left * 1000)):
                frames = self.mon.recv_multipart()
                ev = int.from_bytes(frames[0][:2], "little")
                self.events.append(ev)
                continue
            if time.time() >= end:
                return self.events

    def wait_event(self, event, timeout=10.0):
        end = time.time() + timeout
        while time.time() < end:
            if event in self.events:
                return True
            self.poll_events(0.1)
        return event in self.events

    def handshake(self, timeout=10.0):
        """True when CURVE and ZAP accepted us, False when refused (or nothing happened)."""
        end = time.time() + timeout
        while time.time() < end:
            self.poll_events(0.1)
            if zmq.EVENT_HANDSHAKE_SUCCEEDED in self.events:
                return True
            if any(e in self.events for e in (zmq.EVENT_HANDSHAKE_FAILED_AUTH,
                                               zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                                               zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)):
                return False
        return False

    def send(self, mtype, body):
        self.sock.send(msgpack.packb([1, mtype, body], use_bin_type=True))

    def send_raw(self, data):
        self.sock.send(data)

    def recv_all(self, timeout=2.0):
        """Every message received within timeout, as (type, body)."""
        out = []
        end = time.time() + timeout
        while True:
            left = max(0, end - time.time())
            if not self.sock.poll(int(left * 1000)):
                return out
            env = msgpack.unpackb(self.sock.recv(), raw=False)
            out.append((env[1], env[2]))

    def recv_type(self, mtype, timeout=10.0):
        end = time.time() + timeout
        while time.time() < end:
            for t, b in self.recv_all(min(0.5, max(0, end - time.time()))):
                if t == mtype:
                    return b
        return None

    def close(self):
        self.sock.disable_monitor()
        self.mon.close()
        self.sock.close()
