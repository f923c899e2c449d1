#include "csupport.h"

#include <errno.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* One instruction. */
static struct bpf_insn insn(unsigned char code, unsigned char dst, unsigned char src, short off, int imm) {
    struct bpf_insn i;
    memset(&i, 0, sizeof(i));
    i.code = code;
    i.dst_reg = dst;
    i.src_reg = src;
    i.off = off;
    i.imm = imm;
    return i;
}

int corral_attach_device_program(int cgroup_fd, const struct corral_device_rule *rules, int count,
                                 char *error, unsigned long error_length) {
    /* 6 instructions of prologue, at most 8 per rule, 2 of epilogue. */
    int capacity = 6 + 8 * count + 2;
    struct bpf_insn *program = calloc((size_t)capacity, sizeof(*program));
    if (!program) {
        snprintf(error, error_length, "out of memory");
        return -ENOMEM;
    }
    int n = 0;
    /* r2 = access_type; r3 = type (low 16 bits); r2 = access (high 16 bits); r4 = major; r5 = minor */
    program[n++] = insn(BPF_LDX | BPF_MEM | BPF_W, 2, 1, 0, 0);
    program[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_X, 3, 2, 0, 0);
    program[n++] = insn(BPF_ALU64 | BPF_AND | BPF_K, 3, 0, 0, 0xFFFF);
    program[n++] = insn(BPF_ALU64 | BPF_RSH | BPF_K, 2, 0, 0, 16);
    program[n++] = insn(BPF_LDX | BPF_MEM | BPF_W, 4, 1, 4, 0);
    program[n++] = insn(BPF_LDX | BPF_MEM | BPF_W, 5, 1, 8, 0);
    for (int r = 0; r < count; r++) {
        const struct corral_device_rule *rule = &rules[r];
        int length = 6 + (rule->major >= 0) + (rule->minor >= 0);
        int start = n;
        /* Each test jumps past the rule's block when it fails: offset = block end - (index + 1). */
        int type = rule->block ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR;
        program[n] = insn(BPF_JMP | BPF_JNE | BPF_K, 3, 0, 0, type);
        program[n].off = (short)(start + length - (n + 1));
        n++;
        if (rule->major >= 0) {
            program[n] = insn(BPF_JMP | BPF_JNE | BPF_K, 4, 0, 0, rule->major);
            program[n].off = (short)(start + length - (n + 1));
            n++;
        }
        if (rule->minor >= 0) {
            program[n] = insn(BPF_JMP | BPF_JNE | BPF_K, 5, 0, 0, rule->minor);
            program[n].off = (short)(start + length - (n + 1));
            n++;
        }
        /* r6 = access bits the rule does not allow; any → next rule */
        program[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_X, 6, 2, 0, 0);
        program[n++] = insn(BPF_ALU64 | BPF_AND | BPF_K, 6, 0, 0, ~rule->access & 7);
        program[n] = insn(BPF_JMP | BPF_JNE | BPF_K, 6, 0, 0, 0);
        program[n].off = (short)(start + length - (n + 1));
        n++;
        program[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1);
        program[n++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    }
    program[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0);
    program[n++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);

    char log[4096];
    log[0] = 0;
    union bpf_attr load;
    memset(&load, 0, sizeof(load));
    load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    load.insns = (unsigned long)program;
    load.insn_cnt = (unsigned)n;
    load.license = (unsigned long)"GPL";
    load.log_buf = (unsigned long)log;
    load.log_size = sizeof(log);
    load.log_level = 1;
    int prog = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof(load));
    int saved = errno;
    free(program);
    if (prog < 0) {
        snprintf(error, error_length, "loading the device program: %s%s%s", strerror(saved), log[0] ? ": " : "", log);
        return -saved;
    }
    union bpf_attr attach;
    memset(&attach, 0, sizeof(attach));
    attach.target_fd = (unsigned)cgroup_fd;
    attach.attach_bpf_fd = (unsigned)prog;
    attach.attach_type = BPF_CGROUP_DEVICE;
    int rc = (int)syscall(SYS_bpf, BPF_PROG_ATTACH, &attach, sizeof(attach));
    saved = errno;
    close(prog); /* the attachment keeps the program */
    if (rc < 0) {
        snprintf(error, error_length, "attaching the device program: %s", strerror(saved));
        return -saved;
    }
    return 0;
}

int corral_device_programs(int cgroup_fd) {
    union bpf_attr query;
    memset(&query, 0, sizeof(query));
    query.query.target_fd = (unsigned)cgroup_fd;
    query.query.attach_type = BPF_CGROUP_DEVICE;
    if (syscall(SYS_bpf, BPF_PROG_QUERY, &query, sizeof(query)) < 0) return -errno;
    return (int)query.query.prog_cnt;
}
