/* Smoke firmware: prints over the UART with picolibc's printf, including M-extension arithmetic. */
#include <stdio.h>
#include "soc.h"

static unsigned fib(unsigned n)
{
    unsigned a = 0, b = 1;
    while (n--) {
        unsigned t = a + b;
        a = b;
        b = t;
    }
    return a;
}

int main(void)
{
    int x = -1234567;
    printf("hello from PulseDL-II\n");
    printf("fib(40)=%u %d/7=%d %d%%7=%d\n", fib(40), x, x / 7, x, x % 7);
    return 42;
}
