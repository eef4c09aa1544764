# Every folder's contribution, in dependency order.  A module.mk names only
# files that exist, so that `make` works at every commit; a missing fragment
# is an error (plain include), never a silently smaller build.
include pipeline/module.mk
include pipeline/shard.mk
include pipeline/fetch.mk
include filters/module.mk
include tokenizer/module.mk
include trainer/module.mk
include trainer/cuda.mk
