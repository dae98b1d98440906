#ifndef MATH_TYPES_H
#define MATH_TYPES_H

#include "ultra64.h"

typedef struct Vec3f {
    f32 x, y, z;
} Vec3f;

typedef struct Vec3s {
    s16 x, y, z;
} Vec3s;

f32 Math_SinS(s16 angle);
s32 Math_StepToF(f32* value, f32 target, f32 step);

#endif
