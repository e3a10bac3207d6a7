/* CPU speed workload: CRC-32 (shifts, branches), an 8x8 int matrix product (multiplies, loads, stores) and
   an insertion sort, repeated; prints a checksum so a wrong run is visible. */
#include <stdint.h>
#include <stdio.h>

#ifndef ROUNDS
#define ROUNDS 40
#endif

static uint8_t buffer[512];
static int32_t a[8][8], b[8][8], c[8][8];
static int32_t keys[64];

static uint32_t crc32(const uint8_t *p, unsigned n)
{
    uint32_t crc = 0xFFFFFFFFu;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & -(crc & 1u));
    }
    return ~crc;
}

static void matmul(void)
{
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) {
            int32_t s = 0;
            for (int k = 0; k < 8; k++)
                s += a[i][k] * b[k][j];
            c[i][j] = s;
        }
}

static void sort(uint32_t seed)
{
    for (int i = 0; i < 64; i++) {
        seed = seed * 1103515245u + 12345u;
        keys[i] = (int32_t)(seed >> 8) % 1000;
    }
    for (int i = 1; i < 64; i++) {
        int32_t key = keys[i];
        int j = i - 1;
        while (j >= 0 && keys[j] > key) {
            keys[j + 1] = keys[j];
            j--;
        }
        keys[j + 1] = key;
    }
}

int main(void)
{
    uint32_t sum = 0;
    for (unsigned i = 0; i < sizeof buffer; i++)
        buffer[i] = (uint8_t)(i * 7 + 3);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) {
            a[i][j] = i - j;
            b[i][j] = i * j + 1;
        }
    for (int r = 0; r < ROUNDS; r++) {
        buffer[r % sizeof buffer] ^= (uint8_t)r;
        sum += crc32(buffer, sizeof buffer);
        a[r % 8][(r / 8) % 8] += r;
        matmul();
        sum += (uint32_t)c[r % 8][7];
        sort(sum);
        sum += (uint32_t)keys[r % 64] / 3u;
    }
    printf("bench %u rounds: %08lx\n", ROUNDS, (unsigned long)sum);
    return 0;
}
