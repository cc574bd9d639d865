"""Bad input, round two (issue 16): secrets. Each case fails for a reason of its own and checks (`absent`)
that the secret it carries is not printed: credentials inside URLs are shown as `***`."""

from __future__ import annotations

from bad_input import BASE, Case

PASSWORD = "Pa55w0rd-XYZ-987"
HF_TOKEN = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567"  # the shape of a Hugging Face token; never valid
URL_TOKEN = "tok-Sup3rSecretValue"
WANDB_KEY = "0123456789abcdef0123456789abcdef0123cafe"
_DATA = "datasets:\n  - path: {path}\n    type: alpaca\n"

CASES: list[Case] = [
    Case("secret-mlflow-password-unreachable", "an MLflow server URL with a password, and nothing answers there",
         "train", BASE + f"use_mlflow: true\nmlflow_tracking_uri: http://axo:{PASSWORD}@127.0.0.1:9\n", (),
         ("mlflow_tracking_uri", "http://***@127.0.0.1:9", "Connection refused", "MLFLOW_TRACKING_PASSWORD",
          "use_mlflow: false"), absent=(PASSWORD,)),
    Case("secret-mlflow-token-unreachable", "an MLflow server URL carrying `?token=`, and nothing answers there",
         "train", BASE + f"use_mlflow: true\nmlflow_tracking_uri: http://127.0.0.1:9/?token={URL_TOKEN}\n", (),
         ("mlflow_tracking_uri", "token=***", "Connection refused"), absent=(URL_TOKEN,)),
    Case("secret-dataset-url-password", "a dataset given as a URL with a user name and password", "preprocess",
         "learning_rate: 2e-4\n" + _DATA.format(path=f"https://me:{PASSWORD}@data.example.com/train.jsonl"), (),
         ("https://***@data.example.com/train.jsonl", "path: not found"), absent=(PASSWORD,)),
    Case("secret-dataset-url-token", "a dataset given as a signed URL (`?token=`)", "preprocess",
         "learning_rate: 2e-4\n" + _DATA.format(path=f"https://data.example.com/train.jsonl?token={URL_TOKEN}"), (),
         ("https://data.example.com/train.jsonl?token=***", "path: not found"), absent=(URL_TOKEN,)),
    Case("secret-cli-token-with-a-bad-value", "`--hf_token` on the command line next to a mistaken override",
         "train", BASE, ("--hf_token", HF_TOKEN, "--learning_rate", "fast"), ("learning_rate", "fast"),
         absent=(HF_TOKEN,)),
    Case("secret-token-of-wrong-type", "`hf_token` given as a list holding the token", "validate",
         BASE + f"hf_token: [{HF_TOKEN}]\n", (), ("hf_token",), absent=(HF_TOKEN,)),
    Case("secret-token-in-strict-config", "`hf_token` in the file under `strict: true` (pushing is not built yet)",
         "validate", BASE + f"strict: true\nhf_token: {HF_TOKEN}\n", (), ("hf_token", "strict"),
         absent=(HF_TOKEN,)),
    Case("secret-api-key-in-config", "a W&B API key written into the config (keys come from the environment)",
         "validate", BASE + f"wandb_project: p\nwandb_api_key: {WANDB_KEY}\n", ("--strict",),
         ("wandb_api_key", "looks like a secret", "WANDB_API_KEY"), absent=(WANDB_KEY, "wandb_name")),
    Case("secret-token-pasted-as-a-path", "the Hugging Face token pasted where a path goes (`--datasets.0.path`)",
         "preprocess", BASE, ("--datasets.0.path", HF_TOKEN), ("***: error: path: not found",),
         absent=(HF_TOKEN,)),
]
