# trainer/: the BERT MLM trainer (library `trainer`, prefix bt_) and bin/bert-train.
LIBS += trainer
trainer_SRC := trainer/config.c trainer/cpu.c trainer/mask.c
TRAINER_LDLIBS := -lzstd

TOOLS += bert-train
bert-train_SRC := trainer/main.c
bert-train_LIBS := trainer pipeline
bert-train_LDLIBS := $(TRAINER_LDLIBS)

TESTS += trainer_test
trainer_test_SRC := tests/trainer_test.c
trainer_test_LIBS := trainer pipeline
trainer_test_LDLIBS := $(TRAINER_LDLIBS)

TESTS += trainer_grad_test
trainer_grad_test_SRC := tests/trainer_grad_test.c
trainer_grad_test_LIBS := trainer pipeline
trainer_grad_test_LDLIBS := $(TRAINER_LDLIBS)
