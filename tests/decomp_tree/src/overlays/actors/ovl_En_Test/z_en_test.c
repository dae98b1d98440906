/*
 * A made-up actor in the shape of a decomp actor file, written for ootgen's tests.
 */

#include "z_en_test.h"
#include "play_state.h"
#include "assets/objects/object_test/object_test.h"

#define FLAGS (ACTOR_FLAG_ATTENTION_ENABLED | ACTOR_FLAG_HOSTILE)

#define vWaitTimer actionVar1
#define vSpinDir actionVar2

void EnTest_Init(Actor* thisx, PlayState* play);
void EnTest_Destroy(Actor* thisx, PlayState* play);
void EnTest_Update(Actor* thisx, PlayState* play);
void EnTest_Draw(Actor* thisx, PlayState* play);

void EnTest_Idle(EnTest* this, PlayState* play);
void EnTest_Spin(EnTest* this, PlayState* play);

ActorProfile En_Test_Profile = {
    0x0001, ACTORCAT_ENEMY, FLAGS, 0x0002, sizeof(EnTest),
    EnTest_Init, EnTest_Destroy, EnTest_Update, EnTest_Draw,
};

static ColliderCylinderInit sCylinderInit = {
    1,
    0,
    { 20, 40 },
};

static s16 sSpinSpeeds[] = { 0x100, 0x200, 0x400 };

void EnTest_SetupIdle(EnTest* this) {
    this->vWaitTimer = 30;
    Animation_PlayLoop(&this->skelAnime, &gTestIdleAnim);
    this->actionFunc = EnTest_Idle;
}

void EnTest_Init(Actor* thisx, PlayState* play) {
    EnTest* this = (EnTest*)thisx;

    Actor_SetScale(&this->actor, 0.01f);
    SkelAnime_InitFlex(play, &this->skelAnime, &gTestSkel, &gTestIdleAnim, this->jointTable, this->morphTable, 4);
    Collider_InitCylinder(play, &this->collider);
    Collider_SetCylinder(play, &this->collider, &this->actor, &sCylinderInit);
    EnTest_SetupIdle(this);
}

void EnTest_Destroy(Actor* thisx, PlayState* play) {
    EnTest* this = (EnTest*)thisx;

    this->actor.speed = 0.0f;
}

void EnTest_Idle(EnTest* this, PlayState* play) {
    if (this->vWaitTimer != 0) {
        this->vWaitTimer--;
    } else {
        this->vSpinDir = sSpinSpeeds[play->gameplayFrames % 3];
        this->actionFunc = EnTest_Spin;
    }
    Math_StepToF(&this->actor.speed, 0.0f, 0.5f);
}

void EnTest_Spin(EnTest* this, PlayState* play) {
    this->actor.world.rot.y += this->vSpinDir;
    this->actor.speed = Math_SinS(this->actor.world.rot.y) * 2.0f;
    if (Actor_IsFacingPlayer(&this->actor, 0x2000)) {
        EnTest_SetupIdle(this);
    }
}

void EnTest_Update(Actor* thisx, PlayState* play) {
    EnTest* this = (EnTest*)thisx;

    this->actionFunc(this, play);
    SkelAnime_Update(&this->skelAnime);
    Actor_MoveXZGravity(&this->actor);
    Collider_UpdateCylinder(&this->actor, &this->collider);
    CollisionCheck_SetOC(play, &play->colChkCtx, &this->collider.base);
}

void EnTest_Draw(Actor* thisx, PlayState* play) {
    Gfx_DrawDListOpa(play, gTestBodyDL);
}
