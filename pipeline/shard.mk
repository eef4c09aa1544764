# pipeline/shard.mk: the training shards (library `shard`, prefix shard_) and
# bin/shard-pack, which packs wordpiece's token stream into .npy shards,
# merges shard folders, verifies them and shows a sample.
LIBS += shard
shard_SRC := pipeline/shard.c

TOOLS += shard-pack
shard-pack_SRC := pipeline/shardpack_main.c
shard-pack_LIBS := shard tokenizer pipeline
shard-pack_LDLIBS := -lzstd -lutf8proc

TESTS += shard_test
shard_test_SRC := tests/shard_test.c
shard_test_LIBS := shard pipeline
shard_test_LDLIBS := -lzstd

FUZZ += fuzz_npy
fuzz_npy_SRC := tests/fuzz_npy.c
fuzz_npy_LIBS := shard pipeline
fuzz_npy_LDLIBS := -lzstd
