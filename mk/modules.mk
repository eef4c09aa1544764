# Every folder's contribution, in dependency order.
include pipeline/module.mk
-include filters/module.mk
-include tokenizer/module.mk
-include trainer/module.mk
