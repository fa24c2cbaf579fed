"""requests and httpx through authsome, each only where installed. requests reads HTTPS_PROXY and
REQUESTS_CA_BUNDLE; httpx reads HTTPS_PROXY and SSL_CERT_FILE (trust_env is on by default).

    authsome run -- python3 examples/python_requests.py https://api.github.com/user
"""
import os
import sys

url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("AUTHSOME_EXAMPLE_URL", "https://api.github.com/user")
headers = {"X-Authsome-Connection": os.environ["AUTHSOME_CONNECTION"]} if os.environ.get("AUTHSOME_CONNECTION") else {}
ran = 0
failed = 0

try:
    import requests
except ImportError:
    print("requests: not installed, skipped")
else:
    r = requests.get(url, headers=headers, timeout=30)
    print("requests", r.status_code, r.text)
    ran += 1
    failed += r.status_code >= 400

try:
    import httpx
except ImportError:
    print("httpx: not installed, skipped")
else:
    r = httpx.get(url, headers=headers, timeout=30)
    print("httpx", r.status_code, r.text)
    ran += 1
    failed += r.status_code >= 400

sys.exit(1 if failed else 0)
