#ifndef ANIMATION_H
#define ANIMATION_H

#include "ultra64.h"
#include "math_types.h"

struct PlayState;

typedef struct AnimationHeader {
    s16 frameCount;
} AnimationHeader;

typedef struct StandardLimb {
    Vec3s jointPos;
    u8 child;
    u8 sibling;
    Gfx* dList;
} StandardLimb;

typedef struct SkeletonHeader {
    void** segment;
    u8 limbCount;
} SkeletonHeader;

typedef struct FlexSkeletonHeader {
    SkeletonHeader sh;
    u8 dListCount;
} FlexSkeletonHeader;

typedef struct SkelAnime {
    u8 limbCount;
    AnimationHeader* animation;
    f32 curFrame;
    f32 playSpeed;
    Vec3s* jointTable;
} SkelAnime;

s32 SkelAnime_InitFlex(struct PlayState* play, SkelAnime* skelAnime, FlexSkeletonHeader* skeletonHeaderSeg,
                       AnimationHeader* animation, Vec3s* jointTable, Vec3s* morphTable, s32 limbCount);
s32 SkelAnime_Update(SkelAnime* skelAnime);
void Animation_PlayLoop(SkelAnime* skelAnime, AnimationHeader* animation);

#endif
