/* PulseDL-II SoC memory map (rtl/pulsedl/config.py) for the firmware. */
#ifndef PULSEDL_SOC_H
#define PULSEDL_SOC_H
#include <stdint.h>

#define UART_DATA   (*(volatile uint32_t *)0x00030000u)
#define UART_STATUS (*(volatile uint32_t *)0x00030004u)
#define TIMER_LO    (*(volatile uint32_t *)0x00031000u)
#define TIMER_HI    (*(volatile uint32_t *)0x00031004u)

/* CNN accelerator (rtl/pulsedl/config.py: CSRs, tables, activation banks, kernel registers) */
#define ACC_BASE        0x00040000u
#define ACC_REG(i)      (*(volatile uint32_t *)(ACC_BASE + 4u * (i)))
#define ACC_CTRL        ACC_REG(0)
#define ACC_STATUS      ACC_REG(1)
#define ACC_CYCLES      ACC_REG(2)
#define ACC_THRESHOLD   ACC_REG(3)
#define ACC_CAPTURE_LEN ACC_REG(4)
#define ACC_FIFO_LEVEL  ACC_REG(5)
#define ACC_HWCONFIG    ACC_REG(6)
#define ACC_CAPTURE_WAIT ACC_REG(7)
#define ACC_ACT(bank, i) (*(volatile int32_t *)(ACC_BASE + 0x4000u + 0x1000u * (bank) + 4u * (i)))

#define ACC_CTRL_START     1u
#define ACC_CTRL_ARM       2u
#define ACC_CTRL_AUTOSTART 4u
#define ACC_CTRL_THRESHOLD 8u
#define ACC_CTRL_CLEAR     16u

#define ACC_ST_BUSY      1u
#define ACC_ST_CAPTURING 2u
#define ACC_ST_DONE      4u
#define ACC_ST_ERROR     8u
#define ACC_ST_OVERFLOW  16u

#endif
