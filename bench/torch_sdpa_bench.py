"""PyTorch SDPA attention kernels (FlashAttention-2, cuDNN, memory-efficient) timed at the
trainer's shape, forward and backward, dropout 0 and 0.1: the reference the flash kernels of
trainer/cuda/attention_flash.cu are compared with (bench/results/train_cuda.md).
Run where PyTorch and a GPU are: python3 bench/torch_sdpa_bench.py"""
import torch, time, json
from torch.nn.attention import sdpa_kernel, SDPBackend
import torch.nn.functional as F
B,H,T,D=32,12,512,64
dev="cuda"
q=torch.randn(B,H,T,D,device=dev,dtype=torch.bfloat16,requires_grad=True)
k=torch.randn(B,H,T,D,device=dev,dtype=torch.bfloat16,requires_grad=True)
v=torch.randn(B,H,T,D,device=dev,dtype=torch.bfloat16,requires_grad=True)
do=torch.randn(B,H,T,D,device=dev,dtype=torch.bfloat16)
print(torch.__version__, torch.backends.cudnn.version())
for name,be in [("flash",SDPBackend.FLASH_ATTENTION),("cudnn",SDPBackend.CUDNN_ATTENTION),("efficient",SDPBackend.EFFICIENT_ATTENTION)]:
  for p in [0.0,0.1]:
    try:
      with sdpa_kernel([be]):
        for _ in range(3):
            o=F.scaled_dot_product_attention(q,k,v,dropout_p=p); o.backward(do)
        torch.cuda.synchronize()
        n=20
        e=[torch.cuda.Event(enable_timing=True) for _ in range(3)]
        tf=tb=0
        for _ in range(n):
            e[0].record(); o=F.scaled_dot_product_attention(q,k,v,dropout_p=p); e[1].record(); o.backward(do); e[2].record()
            torch.cuda.synchronize(); tf+=e[0].elapsed_time(e[1]); tb+=e[1].elapsed_time(e[2])
        print(json.dumps({"backend":name,"p":p,"fwd_ms":round(tf/n,4),"bwd_ms":round(tb/n,4)}))
    except Exception as ex:
      print(name,p,"failed",repr(ex)[:200])
