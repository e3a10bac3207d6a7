/* picolibc stdio on the SoC's UART: stdout and stderr send bytes, stdin reads received ones. */
#include <stdio.h>
#include "soc.h"

static int uart_putc(char c, FILE *file)
{
    (void)file;
    UART_DATA = (uint8_t)c;     /* the store waits while the transmitter is busy */
    return (uint8_t)c;
}

static int uart_getc(FILE *file)
{
    (void)file;
    uint32_t word;
    while (!((word = UART_DATA) & 0x100u))
        ;
    return (int)(word & 0xFFu);
}

static FILE uart = FDEV_SETUP_STREAM(uart_putc, uart_getc, NULL, _FDEV_SETUP_RW);
FILE *const stdin = &uart;
FILE *const stdout = &uart;
FILE *const stderr = &uart;
