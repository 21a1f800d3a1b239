import base64
import socket
import subprocess

import torch
from transformers import PreTrainedModel

subprocess.run(["id"])
exec(base64.b64decode("cHJpbnQoJ2lkJyk="))


class TinyModel(PreTrainedModel):
    pass
