#ifndef Z_EN_TEST_H
#define Z_EN_TEST_H

#include "ultra64.h"
#include "actor.h"
#include "animation.h"
#include "collision_check.h"

struct EnTest;

typedef void (*EnTestActionFunc)(struct EnTest*, struct PlayState*);

typedef struct EnTest {
    Actor actor;
    SkelAnime skelAnime;
    Vec3s jointTable[4];
    Vec3s morphTable[4];
    ColliderCylinder collider;
    EnTestActionFunc actionFunc;
    s16 actionVar1;
    s16 actionVar2;
} EnTest;

#endif
