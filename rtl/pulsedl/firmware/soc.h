/* PulseDL-II SoC memory map (rtl/pulsedl/config.py) for the firmware. */
#ifndef PULSEDL_SOC_H
#define PULSEDL_SOC_H
#include <stdint.h>

#define UART_DATA   (*(volatile uint32_t *)0x00030000u)
#define UART_STATUS (*(volatile uint32_t *)0x00030004u)
#define TIMER_LO    (*(volatile uint32_t *)0x00031000u)
#define TIMER_HI    (*(volatile uint32_t *)0x00031004u)

#endif
