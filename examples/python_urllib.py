"""Python's standard library through authsome: urllib reads HTTPS_PROXY (with the session token) and
OpenSSL reads SSL_CERT_FILE (system roots + the authsome CA), both set by `authsome run`.

    authsome run -- python3 examples/python_urllib.py https://api.github.com/user
"""
import os
import sys
import urllib.error
import urllib.request

url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("AUTHSOME_EXAMPLE_URL", "https://api.github.com/user")
if not (os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")):
    sys.exit("HTTPS_PROXY is not set: run this under `authsome run -- python3 examples/python_urllib.py`")
headers = {"X-Authsome-Connection": os.environ["AUTHSOME_CONNECTION"]} if os.environ.get("AUTHSOME_CONNECTION") else {}
try:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as res:
        print(res.status, res.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
    sys.exit(1)
