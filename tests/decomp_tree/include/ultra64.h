#ifndef ULTRA64_H
#define ULTRA64_H

typedef signed char s8;
typedef unsigned char u8;
typedef signed short s16;
typedef unsigned short u16;
typedef signed int s32;
typedef unsigned int u32;
typedef signed long long s64;
typedef unsigned long long u64;
typedef float f32;

#define NULL ((void*)0)

typedef struct Gfx {
    u32 hi;
    u32 lo;
} Gfx;

typedef struct Vtx {
    s16 ob[3];
    u16 flag;
    s16 tc[2];
    u8 cn[4];
} Vtx;

typedef struct Mtx {
    s32 m[4][4];
} Mtx;

#endif
