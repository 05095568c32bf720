#!/usr/bin/env python3
"""Writes the SOPS fixtures of this folder (*.enc.yaml, *.enc.json, *.enc.env).

An independent SOPS encoder written from the SOPS format (not the reference `sops` tool, which is
not packaged for this machine's Debian): AES-256-GCM with a 32-byte IV per value, the key path
joined by ':' plus ':' as additional data, the data key wrapped for age recipients by the real
`age` CLI (armored), and the MAC as upper-case hex SHA-512 over the values' bytes (True/False for
booleans, Go's shortest float form), encrypted with `lastmodified` as additional data.

Run from this folder: python3 make_fixtures.py   (needs python3-cryptography and /usr/bin/age)
The outputs are committed; the tests only read them.
"""
import base64
import hashlib
import json
import os
import subprocess

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

LASTMODIFIED = "2026-12-05T22:30:00Z"
HERE = os.path.dirname(os.path.abspath(__file__))


def recipient_of(key_file):
    with open(os.path.join(HERE, key_file)) as f:
        for line in f:
            if line.startswith("# public key: "):
                return line.split(": ", 1)[1].strip()
    raise SystemExit("no public key in " + key_file)


def to_bytes(v):
    if isinstance(v, bool):
        return b"True" if v else b"False"
    if isinstance(v, int):
        return str(v).encode()
    if isinstance(v, float):
        r = repr(v)
        return (r[:-2] if r.endswith(".0") else r).encode()
    return v.encode()


def type_of(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    return "str"


def enc(key, value, aad):
    if value == "":
        return ""
    iv = os.urandom(32)
    out = AESGCM(key).encrypt(iv, to_bytes(value), aad.encode())
    data, tag = out[:-16], out[-16:]
    b = lambda x: base64.b64encode(x).decode()
    return "ENC[AES256_GCM,data:%s,iv:%s,tag:%s,type:%s]" % (b(data), b(iv), b(tag), type_of(value))


def wrap_key(data_key, recipient):
    return subprocess.run(["age", "-a", "-r", recipient], input=data_key, capture_output=True, check=True).stdout.decode()


class Doc:
    """Encrypts a tree (dict keeps insertion order) and computes its MAC like sops."""

    def __init__(self, unencrypted_suffix="_unencrypted", encrypted_regex=None, mac_only_encrypted=False):
        self.key = os.urandom(32)
        self.suffix = unencrypted_suffix
        self.regex = encrypted_regex
        self.mac_only = mac_only_encrypted
        self.hash = hashlib.sha512()
        if mac_only_encrypted:
            self.hash.update(hashlib.sha256(b"sops").digest())

    def should_encrypt(self, path):
        import re
        encrypted = True
        if self.suffix and any(p.endswith(self.suffix) for p in path):
            encrypted = False
        if self.regex:
            encrypted = any(re.search(self.regex, p) for p in path)
        return encrypted

    def walk(self, v, path):
        if v is None:
            return None
        if isinstance(v, dict):
            return {k: self.walk(x, path + [k]) for k, x in v.items()}
        if isinstance(v, list):
            return [self.walk(x, path) for x in v]
        encrypted = self.should_encrypt(path)
        if not self.mac_only or encrypted:
            self.hash.update(to_bytes(v))
        return enc(self.key, v, ":".join(path) + ":") if encrypted else v

    def metadata(self, recipients):
        md = {
            "age": [{"recipient": r, "enc": wrap_key(self.key, r)} for r in recipients],
            "lastmodified": LASTMODIFIED,
            "mac": enc(self.key, self.hash.hexdigest().upper(), LASTMODIFIED),
        }
        if self.suffix:
            md["unencrypted_suffix"] = self.suffix
        if self.regex:
            md["encrypted_regex"] = self.regex
        if self.mac_only:
            md["mac_only_encrypted"] = True
        md["version"] = "3.9.0"
        return md


def yaml_scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if v.startswith("ENC[") or (v and v.replace("-", "").replace("_", "").isalnum() and not v.isdigit() and v not in ("true", "false", "null", "yes", "no")):
        return v
    return json.dumps(v, ensure_ascii=False)


def yaml_emit(v, indent=0):
    pad = "    " * indent
    lines = []
    if isinstance(v, dict):
        for k, x in v.items():
            if isinstance(x, dict) and x:
                lines.append("%s%s:" % (pad, k))
                lines.extend(yaml_emit(x, indent + 1))
            elif isinstance(x, list):
                lines.append("%s%s:" % (pad, k))
                for item in x:
                    if isinstance(item, dict):
                        sub = yaml_emit(item, indent + 1)
                        first = sub[0].lstrip()
                        lines.append("%s    - %s" % (pad, first))
                        lines.extend("  " + s for s in sub[1:])
                    else:
                        lines.append("%s    - %s" % (pad, yaml_scalar(item)))
            elif isinstance(x, str) and "\n" in x:
                lines.append("%s%s: |" % (pad, k))
                lines.extend("%s    %s" % (pad, l) for l in x.rstrip("\n").split("\n"))
            else:
                lines.append("%s%s: %s" % (pad, k, yaml_scalar(x)))
    return lines


def write(name, text):
    with open(os.path.join(HERE, name), "w") as f:
        f.write(text)
    print("wrote", name)


FLAT = {
    "DB_PASSWORD": "s3cr3t: with colon & spaces",
    "API_TOKEN": "tok-\u00e9\u2713",
    "PORT": 5432,
    "RATIO": 0.25,
    "DEBUG": True,
    "EMPTY": "",
    "PUBLIC_unencrypted": "visible",
    "MULTILINE": "line one\nline two",
}

if __name__ == "__main__":
    me = recipient_of("key.txt")
    other = recipient_of("other-key.txt")

    # YAML, flat; recipients: another one first, then ours (the decoder must try each).
    d = Doc()
    tree = d.walk(FLAT, [])
    tree["sops"] = d.metadata([other, me])
    write("app.enc.yaml", "\n".join(yaml_emit(tree)) + "\n")

    # JSON, same values.
    d = Doc()
    tree = d.walk(FLAT, [])
    tree["sops"] = d.metadata([me])
    write("app.enc.json", json.dumps(tree, indent=4, ensure_ascii=False) + "\n")

    # dotenv: strings only; newlines written as \n; metadata flattened with sops_ prefixes.
    env = {"DB_PASSWORD": "pa=ss word", "MULTILINE": "a\nb", "API_TOKEN": "xyz"}
    d = Doc()
    tree = d.walk(env, [])
    md = d.metadata([me])
    lines = ["%s=%s" % (k, v.replace("\n", "\\n")) for k, v in tree.items()]
    flat = {}
    for i, a in enumerate(md["age"]):
        flat["age__list_%d__map_enc" % i] = a["enc"]
        flat["age__list_%d__map_recipient" % i] = a["recipient"]
    for k in ("lastmodified", "mac", "unencrypted_suffix", "version"):
        flat[k] = md[k]
    lines += ["sops_%s=%s" % (k, flat[k].replace("\n", "\\n")) for k in sorted(flat)]
    write("app.enc.env", "\n".join(lines) + "\n")

    # Nested values and a list (paths, list items adding nothing to the path); not env-shaped.
    nested = {"db": {"user": "app", "password": "pw"}, "hosts": ["a.example", "b.example"], "n": None}
    d = Doc()
    tree = d.walk(nested, [])
    tree["sops"] = d.metadata([me])
    write("nested.enc.yaml", "\n".join(yaml_emit(tree)) + "\n")

    # A Kubernetes Secret with encrypted_regex and mac_only_encrypted (the Flux layout).
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "app"},
        "type": "Opaque",
        "data": {"DB_PASSWORD": base64.b64encode(b"from-data").decode()},
        "stringData": {"API_TOKEN": "from-string-data"},
    }
    d = Doc(unencrypted_suffix=None, encrypted_regex="^(data|stringData)$", mac_only_encrypted=True)
    tree = d.walk(secret, [])
    tree["sops"] = d.metadata([me])
    write("secret.enc.yaml", "\n".join(yaml_emit(tree)) + "\n")

    # Encrypted to another server only.
    d = Doc()
    tree = d.walk({"DB_PASSWORD": "nope"}, [])
    tree["sops"] = d.metadata([other])
    write("other-recipient.enc.yaml", "\n".join(yaml_emit(tree)) + "\n")
