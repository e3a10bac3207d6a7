/* Pulse processing: for each of NPULSES pulses, arm the ADC capture of WINDOW samples with the network started on
   its completion (CSR trigger: the CPU arms, the capture takes the next samples in the FIFO; THRESHOLD_MODE=1 waits
   for a sample >= THRESHOLD instead), wait for the network, read its NOUT outputs from activation bank OUT_BANK and
   print them over the UART with the cycle breakdown:
       P <out0> <out1> <cycles from arm to outputs read> <accelerator cycles> <cycles waiting for ADC samples>
   and at the end the same three counts over the whole batch, UART printing included:  T <total> <acc> <wait>
   The network's descriptors, quantisation table and kernel registers were preloaded (deployed once). An accelerator
   error prints "E <status>" and stops; an ADC FIFO overflow at the end prints "O". The outputs are also kept in
   pulse_results (the region the fault-injection workload faultinj/workloads/pulsedl.py:pulse_batch compares). */
#include <stdio.h>
#include "soc.h"

#ifndef NPULSES
#define NPULSES 1
#endif
#ifndef WINDOW
#define WINDOW 64
#endif
#ifndef OUT_BANK
#define OUT_BANK 1
#endif
#ifndef NOUT
#define NOUT 2
#endif
#ifndef THRESHOLD_MODE
#define THRESHOLD_MODE 0
#endif
#ifndef THRESHOLD
#define THRESHOLD 0
#endif
#ifndef FOREVER
#define FOREVER 0   /* 1: process pulses until reset (a board's boot firmware; pulse_results keeps the last NPULSES) */
#endif

volatile int32_t pulse_results[NPULSES][NOUT];

int main(void)
{
    ACC_CAPTURE_LEN = WINDOW;
    ACC_THRESHOLD = (uint32_t)THRESHOLD;
    ACC_CTRL = ACC_CTRL_CLEAR;
    uint32_t start = TIMER_LO, acc_start = ACC_CYCLES, wait_start = ACC_CAPTURE_WAIT;
    for (unsigned n = 0; FOREVER || n < NPULSES; n++) {
        uint32_t t0 = TIMER_LO, a0 = ACC_CYCLES, w0 = ACC_CAPTURE_WAIT;
        ACC_CTRL = ACC_CTRL_ARM | ACC_CTRL_AUTOSTART | (THRESHOLD_MODE ? ACC_CTRL_THRESHOLD : 0u);
        uint32_t status;
        while (!((status = ACC_STATUS) & (ACC_ST_DONE | ACC_ST_ERROR)))
            ;
        if (status & ACC_ST_ERROR) {
            printf("E %lx\n", (unsigned long)status);
            return 1;
        }
        int32_t out[NOUT];
        for (unsigned i = 0; i < NOUT; i++)
            pulse_results[FOREVER ? n % NPULSES : n][i] = out[i] = ACC_ACT(OUT_BANK, i);
        uint32_t t1 = TIMER_LO, a1 = ACC_CYCLES, w1 = ACC_CAPTURE_WAIT;
        printf("P");
        for (unsigned i = 0; i < NOUT; i++)
            printf(" %ld", (long)out[i]);
        printf(" %lu %lu %lu\n", (unsigned long)(t1 - t0), (unsigned long)(a1 - a0), (unsigned long)(w1 - w0));
    }
    uint32_t end = TIMER_LO, acc_end = ACC_CYCLES, wait_end = ACC_CAPTURE_WAIT;
    printf("T %lu %lu %lu\n", (unsigned long)(end - start), (unsigned long)(acc_end - acc_start),
           (unsigned long)(wait_end - wait_start));
    if (ACC_STATUS & ACC_ST_OVERFLOW)
        printf("O\n");
    return 0;
}
